"""Synthetic ECG: beats are the clean signal's QRS extrema, PVCs are wide and premature,
and a record is a function of its seed."""

from __future__ import annotations

import numpy as np
import pytest

from dlcc.ecg.synth import SYNTH_RATES, random_record, synthesize
from dlcc.errors import DataError


def _qrs_width(clean: np.ndarray, beat: int) -> int:
    """Samples around `beat` where |clean| stays above half its value at the beat."""
    level = 0.5 * abs(clean[beat])
    left = right = beat
    while left > 0 and abs(clean[left - 1]) >= level:
        left -= 1
    while right < len(clean) - 1 and abs(clean[right + 1]) >= level:
        right += 1
    return right - left + 1


@pytest.mark.parametrize("fs", [128.0, 250.0, 360.0, 500.0])
def test_beats_are_the_clean_signals_main_extrema(fs):
    for seed in range(3):
        record = random_record(np.random.default_rng(seed), 30.0, fs=fs, ectopic=True)
        clean, beats = record.clean, record.beats
        assert beats.dtype == np.int64 and np.all(np.diff(beats) > 0)
        assert len(beats) == len(record.kinds) and set(record.kinds) <= {"N", "V"}
        reach = int(0.06 * fs)  # wider than the 40 ms the synthesiser searches
        for beat in beats:
            window = np.abs(clean[max(beat - reach, 0) : beat + reach + 1])
            assert abs(clean[beat]) == pytest.approx(window.max(), rel=1e-12)
            # and it is a true turning point of the waveform
            if 0 < beat < len(clean) - 1:
                assert abs(clean[beat]) >= abs(clean[beat - 1])
                assert abs(clean[beat]) >= abs(clean[beat + 1])


def test_pvcs_are_wider_premature_and_followed_by_a_pause():
    record = synthesize(
        120.0, 360.0, np.random.default_rng(4), heart_rate=70, hrv=0.01, ectopic_fraction=0.25
    )
    kinds, beats, clean = record.kinds, record.beats, record.clean
    assert 0.1 < np.mean(kinds == "V") < 0.35
    widths = {kind: [_qrs_width(clean, b) for b, k in zip(beats, kinds, strict=True) if k == kind]
              for kind in "NV"}  # fmt: skip
    assert np.median(widths["V"]) > 2 * np.median(widths["N"])
    assert np.median(widths["N"]) / 360 < 0.05  # a normal QRS is narrow (< 50 ms at half height)
    rr = np.diff(beats) / 360.0
    normal_rr = np.median(rr)
    for index in np.flatnonzero(kinds == "V"):
        if 0 < index < len(beats) - 1 and kinds[index + 1] == "N" and kinds[index - 1] == "N":
            before, after = rr[index - 1], rr[index]
            assert before < 0.85 * normal_rr  # premature
            assert after > before  # compensatory pause
            assert before + after == pytest.approx(2 * normal_rr, rel=0.15)


def test_bigeminy_alternates_normal_and_ventricular_beats():
    record = synthesize(30.0, 250.0, np.random.default_rng(1), bigeminy=True)
    assert "".join(record.kinds[1:9]) in ("VNVNVNVN", "NVNVNVNV")


def test_polarity_flips_the_whole_clean_signal():
    upright = synthesize(10.0, 250.0, np.random.default_rng(2), ectopic_fraction=0.2)
    flipped = synthesize(10.0, 250.0, np.random.default_rng(2), ectopic_fraction=0.2, polarity=-1)
    np.testing.assert_array_equal(flipped.clean, -upright.clean)
    np.testing.assert_array_equal(flipped.beats, upright.beats)


def test_records_are_deterministic_given_the_rng():
    first = random_record(np.random.default_rng(7), 20.0)
    again = random_record(np.random.default_rng(7), 20.0)
    other = random_record(np.random.default_rng(8), 20.0)
    np.testing.assert_array_equal(first.signal, again.signal)
    np.testing.assert_array_equal(first.beats, again.beats)
    assert first.params == again.params and first.params != other.params


def test_random_records_stay_in_their_documented_ranges():
    rng = np.random.default_rng(0)
    rates, with_pvcs = set(), 0
    for _ in range(30):
        record = random_record(rng, 20.0)
        params = record.params
        rates.add(record.fs)
        assert 45 <= params["heart_rate"] <= 150 and 0.3 <= params["amplitude"] <= 3.0
        assert 0 <= params["ectopic_fraction"] <= 0.3 and params["polarity"] in (1, -1)
        assert len(record.signal) == round(20.0 * record.fs) and np.isfinite(record.signal).all()
        with_pvcs += bool(np.any(record.kinds == "V"))
        bpm = 60 * record.fs / np.median(np.diff(record.beats))
        assert 35 < bpm < 170
    assert rates <= set(SYNTH_RATES) and len(rates) >= 3
    assert 5 <= with_pvcs <= 28
    assert all(np.any(random_record(rng, 20.0, ectopic=True).kinds == "V") for _ in range(5))


def test_noise_is_added_on_top_of_the_clean_beats():
    noisy = {"baseline_wander": 0.3, "emg_noise": 0.05, "powerline": 0.05, "motion_bursts": 2}
    record = synthesize(20.0, 500.0, np.random.default_rng(3), powerline_hz=60, **noisy)
    noise = record.signal - record.clean
    assert 0.02 < noise.std() < 0.6
    spectrum = np.abs(np.fft.rfft(noise))
    hz = np.fft.rfftfreq(len(noise), 1 / 500.0)
    assert spectrum[np.argmin(np.abs(hz - 60))] > 10 * np.median(spectrum)  # the hum is there


def test_bad_parameters_are_data_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match=r"fs in \[100"):
        synthesize(10.0, 50.0, rng)
    with pytest.raises(DataError, match="heart_rate"):
        synthesize(10.0, 250.0, rng, heart_rate=0)
    with pytest.raises(DataError, match="numpy Generator"):
        synthesize(10.0, 250.0, 0)
