"""ECG augmentation: time moves keep targets on their beats, the rest touch the inputs
only, draws are seeded, and bad recipes are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcc.ecg.augment import (
    DEFAULT_SPEC,
    AmplitudeScale,
    BaselineWander,
    MotionBurst,
    Noise,
    PolarityFlip,
    RandomCrop,
    TimeShift,
    augment,
    build_ecg_augmentation,
)
from dlcc.ecg.preprocess import heatmap
from dlcc.training.transforms import TransformError


def _batch(count=6, length=400, seed=0):
    """Inputs whose every beat bump equals the target's, beats away from the edges."""
    rng = np.random.default_rng(seed)
    targets = np.stack(
        [heatmap(np.sort(rng.choice(np.arange(80, length - 80), 3, replace=False)), length)
         for _ in range(count)]
    )  # fmt: skip
    targets = torch.from_numpy(targets)[:, None, :]  # (B, 1, T)
    return targets.clone() * 3.0, targets


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_a_time_shift_moves_inputs_and_targets_together():
    inputs, targets = _batch()
    shifted_inputs, shifted_targets = TimeShift(max_s=0.2)(inputs, targets, _gen())
    np.testing.assert_allclose(shifted_inputs, 3.0 * shifted_targets)
    moved = 0
    for before, after in zip(targets[:, 0], shifted_targets[:, 0], strict=True):
        shift = int(after.argmax()) - int(before.argmax())
        assert abs(shift) <= 50  # 0.2 s at 250 Hz
        np.testing.assert_allclose(after, torch.roll(before, shift), atol=1e-6)
        moved += shift != 0
    assert moved >= 3


def test_a_random_crop_takes_the_same_window_from_both():
    inputs, targets = _batch()
    crop_inputs, crop_targets = RandomCrop(300)(inputs, targets, _gen())
    assert crop_inputs.shape == (6, 1, 300) and crop_targets.shape == (6, 1, 300)
    np.testing.assert_allclose(crop_inputs, 3.0 * crop_targets)
    for index in range(6):
        start = [
            s
            for s in range(101)
            if torch.equal(inputs[index, 0, s : s + 300], crop_inputs[index, 0])
        ]
        assert start  # the crop is a window of the original
    with pytest.raises(TransformError, match="does not fit"):
        RandomCrop(500)(inputs, targets, _gen())


@pytest.mark.parametrize(
    "transform",
    [PolarityFlip(p=1.0), AmplitudeScale(), Noise(), BaselineWander(), MotionBurst(p=1.0)],
)
def test_signal_transforms_change_the_inputs_only(transform):
    inputs, targets = _batch()
    new_inputs, new_targets = transform(inputs, targets, _gen())
    assert torch.equal(new_targets, targets)
    assert new_inputs.shape == inputs.shape and not torch.equal(new_inputs, inputs)


def test_polarity_flip_negates_and_band_noise_stays_in_its_band():
    inputs, targets = _batch()
    flipped, _ = PolarityFlip(p=1.0)(inputs, targets, _gen())
    assert torch.equal(flipped, -inputs)
    zeros = torch.zeros(4, 1, 2500)
    noisy, _ = Noise(white=0.0, band=1.0, low_hz=20, high_hz=40)(zeros, zeros, _gen())
    spectrum = torch.fft.rfft(noisy[:, 0], dim=-1).abs().sum(0)
    hz = torch.fft.rfftfreq(2500, 1 / 250.0)
    outside = (hz < 19) | (hz > 41)
    assert spectrum[outside].max() < 1e-3 * spectrum.max()


def test_augmentation_is_seeded():
    inputs, targets = _batch()
    first = augment(inputs, targets, _gen(3))
    again = augment(inputs, targets, _gen(3))
    other = augment(inputs, targets, _gen(4))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_the_recipe_parser_builds_and_refuses_in_one_line():
    pipeline = build_ecg_augmentation([{"random_crop": {"size": 300}}, *DEFAULT_SPEC])
    inputs, targets = _batch()
    out_inputs, out_targets = pipeline(inputs, targets, _gen())
    assert out_inputs.shape == (6, 1, 300) and out_targets.shape == (6, 1, 300)
    assert build_ecg_augmentation(None) is None and build_ecg_augmentation([]) is None
    with pytest.raises(TransformError, match=r"unknown transform 'flip'.*polarity_flip"):
        build_ecg_augmentation(["flip"])
    with pytest.raises(TransformError, match="unknown option 'q'"):
        build_ecg_augmentation([{"polarity_flip": {"q": 1}}])
    with pytest.raises(TransformError, match="random_crop must come first"):
        build_ecg_augmentation(["noise", {"random_crop": {"size": 10}}])
    with pytest.raises(TransformError, match=r"p: expected a number in \[0, 1\]"):
        build_ecg_augmentation([{"polarity_flip": {"p": 2}}])
    with pytest.raises(TransformError, match=r"batch of windows \(B, C, T\)"):
        augment(torch.zeros(2, 100), torch.zeros(2, 100), _gen())


def test_an_empty_composition_copies_ecg_windows():
    from dlcc.ecg.augment import EcgCompose

    inputs, targets = torch.randn(2, 1, 50), torch.rand(2, 1, 50)
    out_inputs, out_targets = EcgCompose([])(inputs, targets, torch.Generator())
    assert torch.equal(out_inputs, inputs) and out_inputs is not inputs
    assert torch.equal(out_targets, targets) and repr(EcgCompose([])) == "EcgCompose([])"


def test_a_motion_burst_is_one_slow_hann_shaped_stretch_scaled_to_the_r_waves():
    inputs, targets = _batch(count=8, length=2000)
    burst = MotionBurst(p=1.0, sd=(0.5, 0.5), duration_s=(1.0, 1.0))
    noisy, _ = burst(inputs, targets, _gen())
    added = (noisy - inputs)[:, 0]  # (B, T)
    for row, signal in zip(added, inputs[:, 0], strict=True):
        inside = torch.nonzero(row.abs() > 0)[:, 0]
        assert 240 <= len(inside) <= 250  # 1 s at 250 Hz, the Hann ends are zero
        assert inside[-1] - inside[0] == len(inside) - 1  # one contiguous stretch
        centred = (signal - signal.median()).abs()
        r_amplitude = float(torch.quantile(centred, 0.99))
        # sd 0.5 R amplitudes over the burst, Hann-weighted: rms of the envelope is sqrt(3/8)
        rms = float(row[inside].pow(2).mean().sqrt())
        assert 0.5 * r_amplitude * 0.35 < rms < 0.5 * r_amplitude * 0.9
    zeros = torch.zeros(4, 1, 2500)
    ones = zeros.clone()
    ones[:, :, ::25] = 10.0  # spikes give the window an R amplitude
    noisy, _ = MotionBurst(p=1.0, duration_s=(9.0, 9.0))(ones, zeros, _gen())
    spectrum = torch.fft.rfft((noisy - ones)[:, 0], dim=-1).abs().sum(0)
    hz = torch.fft.rfftfreq(2500, 1 / 250.0)
    assert spectrum[hz > 25].max() < 0.05 * spectrum.max()  # slower than a QRS
    none, _ = MotionBurst(p=0.0)(inputs, targets, _gen())
    assert torch.equal(none, inputs)


def test_motion_bursts_come_from_a_recipe_and_refuse_bad_ranges():
    pipeline = build_ecg_augmentation([{"motion_burst": {"p": 0.5, "sd": [0.1, 0.3]}}])
    assert "MotionBurst(p=0.5, sd=(0.1, 0.3)" in repr(pipeline)
    with pytest.raises(TransformError, match=r"sd: expected a range \[low, high\]"):
        build_ecg_augmentation([{"motion_burst": {"sd": 0.3}}])
    with pytest.raises(TransformError, match=r"duration_s high: expected a number in \[2"):
        build_ecg_augmentation([{"motion_burst": {"duration_s": [2, 1]}}])
