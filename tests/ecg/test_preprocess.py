"""Preprocessing against oracles: scipy, known sinusoids, brute force, round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal as sps

from dlcc.ecg.preprocess import (
    FS,
    beats_to_internal,
    beats_to_native,
    heatmap,
    local_maxima,
    normalise,
    pick_peaks,
    resample,
    resampling_ratio,
    stitch,
    to_internal,
    window_starts,
    windows,
)
from dlcc.ecg.synth import synthesize
from dlcc.errors import DataError


@pytest.mark.parametrize(("fs", "ratio"), [(360, (25, 36)), (128, (125, 64)), (500, (1, 2))])
def test_the_ratio_is_exact_for_the_common_rates(fs, ratio):
    assert resampling_ratio(fs, FS) == ratio


@pytest.mark.parametrize("fs", [128.0, 360.0, 500.0, 1000.0])
def test_resample_keeps_a_sinusoids_frequency_and_matches_scipy(fs):
    t = np.arange(int(20 * fs)) / fs
    x = np.sin(2 * np.pi * 7.0 * t + 0.3)
    y = to_internal(x, fs)
    up, down = resampling_ratio(fs, FS)
    np.testing.assert_allclose(y, sps.resample_poly(x, up, down), rtol=0, atol=1e-12)
    assert len(y) == -(-len(x) * up // down)
    expected = np.sin(2 * np.pi * 7.0 * np.arange(len(y)) / FS + 0.3)
    interior = slice(int(FS), len(y) - int(FS))  # away from the filter's edge effects
    np.testing.assert_allclose(y[interior], expected[interior], atol=2e-3)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.fft.rfftfreq(len(y), 1 / FS)[np.argmax(spectrum)] == pytest.approx(7.0, abs=0.05)
    np.testing.assert_array_equal(resample(x, fs, fs), x)


@pytest.mark.parametrize("fs", [360.0, 128.0, 500.0, 257.0, 1000.0, 100.0, 250.5])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001, 5003])
def test_resample_equals_scipy_resample_poly_for_any_ratio_and_length(fs, n):
    x = np.random.default_rng(n).standard_normal(n)
    up, down = resampling_ratio(fs, FS)
    expected = sps.resample_poly(x, up, down)
    got = resample(x, fs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_local_maxima_equals_scipy_find_peaks():
    rng = np.random.default_rng(3)
    for trial in range(500):
        n = int(rng.integers(0, 60))
        kind = trial % 3
        if kind == 0:
            x = rng.random(n)
        elif kind == 1:
            x = rng.integers(0, 3, n).astype(float)  # plateaus, and plateaus at the edges
        else:
            x = np.where(rng.random(n) < 0.3, -np.inf, rng.integers(0, 3, n).astype(float))
        expected, _ = sps.find_peaks(x)
        assert local_maxima(x).tolist() == expected.tolist(), x.tolist()
        assert local_maxima(x).dtype == np.int64


@pytest.mark.parametrize("fs", [360.0, 128.0, 500.0, 257.0])
def test_native_to_internal_to_native_is_within_one_sample(fs):
    native = np.sort(np.random.default_rng(0).choice(int(600 * fs), 3000, replace=False))
    back = beats_to_native(beats_to_internal(native, fs), FS, fs)
    assert np.max(np.abs(back - native)) <= 1


@pytest.mark.parametrize("fs", [360.0, 128.0, 500.0])
def test_refinement_recovers_the_exact_native_beats(fs):
    record = synthesize(30.0, fs, np.random.default_rng(1), ectopic_fraction=0.2, emg_noise=0.01)
    internal = beats_to_internal(record.beats, fs)  # what a perfect detector at FS finds
    found = beats_to_native(internal, FS, fs, signal=record.clean)
    np.testing.assert_array_equal(found, record.beats)


def test_normalise_is_robust_affine_invariant_and_safe_on_flat_windows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 500))
    z = normalise(x)
    np.testing.assert_allclose(np.median(z, axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(normalise(3.0 * x + 5.0), z, atol=1e-10)
    np.testing.assert_allclose(normalise(x[2]), z[2])
    with np.errstate(all="raise"):
        assert np.all(normalise(np.full(100, 4.2)) == 0)
        assert np.all(normalise(np.full(100, np.nan)) == 0)
    qrs_like = np.zeros(1000)
    qrs_like[np.arange(1000) % 100 < 10] = 1.0  # 10 % of samples away from the baseline
    assert np.abs(normalise(qrs_like)).max() == pytest.approx(10.0)  # the 1-99 % spread
    spike = np.zeros(1000)
    spike[500] = 7.0
    assert np.abs(normalise(spike)).max() == pytest.approx(50.0)  # the bound on outputs


def test_windows_and_stitch_round_trip():
    rng = np.random.default_rng(1)
    for total, length, hop in itertools.product([1, 7, 100, 2001], [10, 64], [1, 5, 10, 64]):
        if hop > length:
            continue
        x = rng.normal(size=total)
        cut = windows(x, length, hop)
        starts = window_starts(total, length, hop)
        assert cut.shape == (len(starts), length) and starts[-1] + length >= total
        for start, row in zip(starts, cut, strict=True):
            inside = x[start : start + length]
            np.testing.assert_array_equal(row[: len(inside)], inside)
            assert np.all(row[len(inside) :] == x[-1])  # edge padding
        for mode in ("mean", "centre"):
            np.testing.assert_allclose(stitch(cut, hop, total, mode=mode), x, rtol=1e-12)
    assert np.all(windows(np.ones(5), 8, 4, pad="constant")[0, 5:] == 0)


def test_centre_stitching_takes_each_sample_from_its_most_central_window():
    scores = np.stack([np.full(10, 1.0), np.full(10, 2.0)])  # starts 0 and 5
    stitched = stitch(scores, 5, 15, mode="centre")
    # sample 7: 7 from the first window's edge-distance 2, 2 in the second -> tie: first
    assert stitched[:7].tolist() == [1.0] * 7 and stitched[8:].tolist() == [2.0] * 7
    assert stitch(scores, 5, 15)[5:10].tolist() == [1.5] * 5


def test_heatmap_is_one_at_each_beat_with_gaussian_shoulders():
    beats = np.array([0, 40, 52, 300, 499])
    target = heatmap(beats, 500, fs=250.0, sigma_s=0.02)  # sigma = 5 samples
    assert target.dtype == np.float32 and target.shape == (500,)
    assert np.all(target[beats] == 1.0)
    expected = np.max(np.exp(-((np.arange(500)[:, None] - beats) ** 2) / (2 * 25.0)), axis=1)
    expected[np.abs(np.arange(500)[:, None] - beats).min(axis=1) > 20] = 0  # cut at 4 sigma
    np.testing.assert_allclose(target, expected, atol=1e-6)
    assert np.all(heatmap(np.array([-30, 900]), 100) == 0)


def _brute_force_peaks(x, threshold, gap):
    """Plateau-aware local maxima >= threshold, then greedy by height (earlier on ties)."""
    candidates = []
    i = 1
    while i < len(x) - 1:
        if x[i] > x[i - 1]:
            j = i
            while j + 1 < len(x) and x[j + 1] == x[i]:
                j += 1
            if j + 1 < len(x) and x[j + 1] < x[i] and x[i] >= threshold:
                candidates.append((i + j) // 2)
            i = j + 1
        else:
            i += 1
    kept = []
    for c in sorted(candidates, key=lambda c: (-x[c], c)):
        if all(abs(c - k) >= gap for k in kept):
            kept.append(c)
    return sorted(kept)


def test_pick_peaks_matches_a_brute_force_reference():
    rng = np.random.default_rng(2)
    for trial in range(300):
        n = int(rng.integers(3, 200))
        x = rng.random(n) if trial % 2 else rng.integers(0, 4, n) / 3.0  # ties and plateaus
        threshold = float(rng.uniform(0, 1))
        refractory = float(rng.uniform(0, 0.1))
        fs = 250.0
        gap = int(np.ceil(refractory * fs - 1e-9))
        assert pick_peaks(x, fs, threshold, refractory).tolist() == _brute_force_peaks(
            x, threshold, gap
        ), (trial, x.tolist(), threshold, gap)


def test_pick_peaks_finds_a_heatmaps_beats_exactly():
    beats = np.array([30, 120, 190, 400, 700])  # >= 0.25 s = 62.5 samples apart
    found = pick_peaks(heatmap(beats, 800), FS, 0.5, 0.25)
    np.testing.assert_array_equal(found, beats)
    assert pick_peaks(np.full(100, np.nan)).size == 0


def test_bad_inputs_are_data_errors():
    with pytest.raises(DataError, match="1-D real signal"):
        resample(np.zeros((3, 3)), 360.0)
    with pytest.raises(DataError, match="integer sample indices"):
        beats_to_internal(np.array([1.5]), 360.0)
    with pytest.raises(DataError, match="hop <= length"):
        windows(np.zeros(10), 4, 5)
    with pytest.raises(DataError, match="sampling rate"):
        to_internal(np.zeros(10), 0)
