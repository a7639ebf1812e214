"""Paired (dense-task) augmentation: one draw moves image and mask together, seeded, exact.

The images encode their pixels' coordinates, and the masks are a function of those
coordinates, so after any geometric transform mask == classes(image) must still hold.
"""

from __future__ import annotations

import pytest
import torch

from dlcc.training.paired_transforms import (
    PairedBrightnessContrast,
    PairedCompose,
    PairedElastic,
    PairedFlips,
    PairedRandomCrop,
    PairedRot90,
    build_paired_transforms,
)
from dlcc.training.transforms import TransformError


def coordinate_batch(count: int = 6, height: int = 12, width: int = 12):
    """Inputs (N, 2, H, W): channel 0 = row, 1 = column (plus a per-sample offset of
    100 n); targets (N, 1, H, W): classes(inputs), a 3-class checkerboard."""
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    offsets = 100.0 * torch.arange(count, dtype=torch.float32)[:, None, None, None]
    inputs = torch.stack([rows, cols])[None] + offsets  # (N, 2, H, W)
    return inputs, classes(inputs)


def classes(inputs: torch.Tensor) -> torch.Tensor:
    """The class of each pixel from its coordinates: (N, 2, H, W) -> (N, 1, H, W) in 0..2."""
    row, col = inputs[:, :1].round() % 100, inputs[:, 1:].round() % 100
    return ((row // 3 + col // 3) % 3).float()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


GEOMETRIC = [
    PairedRandomCrop(size=(7, 5)),
    PairedFlips(p=0.5),
    PairedRot90(),
    PairedCompose([PairedRandomCrop(8), PairedFlips(), PairedRot90()]),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_whole_pixel_moves_keep_the_mask_on_its_image_and_are_seeded(transform):
    inputs, targets = coordinate_batch()
    moved_inputs, moved_targets = transform(inputs, targets, seeded(3))
    assert torch.equal(moved_targets, classes(moved_inputs))
    again = transform(inputs, targets, seeded(3))
    assert torch.equal(again[0], moved_inputs) and torch.equal(again[1], moved_targets)
    other = transform(inputs, targets, seeded(4))
    assert not torch.equal(other[0], moved_inputs)


def test_random_crop_cuts_a_window_of_each_own_sample():
    inputs, targets = coordinate_batch(count=8)
    cropped, cropped_targets = PairedRandomCrop(size=[7, 5])(inputs, targets, seeded(0))
    assert cropped.shape == (8, 2, 7, 5) and cropped_targets.shape == (8, 1, 7, 5)
    for n in range(8):
        top, left = int(cropped[n, 0, 0, 0]) - 100 * n, int(cropped[n, 1, 0, 0]) - 100 * n
        assert torch.equal(cropped[n], inputs[n, :, top : top + 7, left : left + 5])
    tops = {int(cropped[n, 0, 0, 0]) % 100 for n in range(8)}
    assert len(tops) > 1  # each sample its own draw


def test_a_window_larger_than_the_images_is_refused():
    inputs, targets = coordinate_batch(height=12, width=12)
    with pytest.raises(TransformError, match="does not fit in 12x12"):
        PairedRandomCrop(size=16)(inputs, targets, seeded())


def test_flips_and_rot90_match_torch_per_sample():
    inputs, targets = coordinate_batch(count=32)
    flipped, _ = PairedFlips(p=0.5)(inputs, targets, seeded(1))
    rotated, rotated_targets = PairedRot90()(inputs, targets, seeded(1))
    flip_seen, turn_seen = set(), set()
    for n in range(32):
        flips = {(h, v): inputs[n].flip(-1) if h else inputs[n] for h in (0, 1) for v in (0, 1)}
        flips = {key: image.flip(-2) if key[1] else image for key, image in flips.items()}
        flip_seen |= {key for key, image in flips.items() if torch.equal(flipped[n], image)}
        turns = [k for k in range(4) if torch.equal(rotated[n], torch.rot90(inputs[n], k, (1, 2)))]
        assert len(turns) == 1
        assert torch.equal(rotated_targets[n], torch.rot90(targets[n], turns[0], (1, 2)))
        turn_seen.add(turns[0])
    assert flip_seen == {(0, 0), (0, 1), (1, 0), (1, 1)} and turn_seen == {0, 1, 2, 3}


def test_rot90_on_non_square_images_only_half_turns():
    inputs, targets = coordinate_batch(count=12, height=6, width=9)
    rotated, rotated_targets = PairedRot90()(inputs, targets, seeded(2))
    assert rotated.shape == inputs.shape and torch.equal(rotated_targets, classes(rotated))
    turns = {2 if torch.equal(rotated[n], inputs[n].flip(-1, -2)) else 0 for n in range(12)}
    assert turns == {0, 2}
    assert all(
        torch.equal(rotated[n], inputs[n]) or torch.equal(rotated[n], inputs[n].flip(-1, -2))
        for n in range(12)
    )


def test_elastic_moves_masks_with_images_and_keeps_them_class_indices():
    inputs, targets = coordinate_batch(count=4, height=16, width=16)
    warp = PairedElastic(alpha=3.0, sigma=3.0, p=1.0)
    warped, warped_targets = warp(inputs, targets, seeded(5))
    assert not torch.equal(warped, inputs)
    assert set(warped_targets.unique().tolist()) <= {0.0, 1.0, 2.0}
    # Bilinear sampling of a coordinate ramp gives the sampled coordinate itself, so the
    # nearest-sampled mask matches classes(inputs) except at rounding ties.
    agreement = (warped_targets == classes(warped)).float().mean()
    assert agreement > 0.97
    again = warp(inputs, targets, seeded(5))
    assert torch.equal(again[0], warped) and torch.equal(again[1], warped_targets)


def test_elastic_with_alpha_zero_or_p_zero_is_the_identity():
    inputs, targets = coordinate_batch(count=3)
    still, still_targets = PairedElastic(alpha=0, sigma=2, p=1.0)(inputs, targets, seeded())
    assert (still - inputs).abs().max() < 1e-4
    assert torch.equal(still_targets, targets)
    kept, kept_targets = PairedElastic(alpha=5, sigma=2, p=0.0)(inputs, targets, seeded())
    assert torch.equal(kept, inputs) and torch.equal(kept_targets, targets)


def test_elastic_bilinear_targets_for_heatmaps_stay_in_range():
    inputs, _ = coordinate_batch(count=2)
    heatmaps = torch.rand(2, 3, 12, 12, generator=seeded(9))
    warp = PairedElastic(alpha=2, sigma=2, p=1.0, target_interpolation="bilinear")
    _, warped = warp(inputs, heatmaps, seeded(1))
    assert warped.shape == heatmaps.shape
    assert warped.min() >= heatmaps.min() - 1e-6 and warped.max() <= heatmaps.max() + 1e-6
    assert not set(warped.unique().tolist()) <= set(heatmaps.unique().tolist())


def test_brightness_contrast_changes_inputs_only_within_its_ranges():
    inputs = torch.randn(8, 1, 6, 6, generator=seeded(0))
    targets = (inputs > 0).float()
    transform = PairedBrightnessContrast(brightness=0.2, contrast=0.3, p=1.0)
    changed, same_targets = transform(inputs, targets.clone(), seeded(1))
    assert torch.equal(same_targets, targets)
    mean_in, mean_out = inputs.mean(dim=(1, 2, 3)), changed.mean(dim=(1, 2, 3))
    assert ((mean_out - mean_in).abs() <= 0.2 + 1e-5).all()
    gain = (changed - mean_out[:, None, None, None]) / (inputs - mean_in[:, None, None, None])
    assert ((gain - 1).abs() <= 0.3 + 1e-4).all() and not torch.allclose(changed, inputs)
    untouched, _ = PairedBrightnessContrast(p=0.0)(inputs, targets, seeded(1))
    assert torch.equal(untouched, inputs)


def test_memory_format_is_kept():
    inputs, targets = coordinate_batch()
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    flipped, _ = PairedFlips()(inputs, targets, seeded())
    assert flipped.is_contiguous(memory_format=torch.channels_last)


def test_a_recipe_list_builds_and_sets_the_target_interpolation():
    spec = [{"random_crop": {"size": [8, 8]}}, "flips", "rot90", {"elastic": {"p": 1}},
            {"brightness_contrast": None}]  # fmt: skip
    composed = build_paired_transforms(spec)
    assert [type(t) for t in composed.transforms] == [
        PairedRandomCrop, PairedFlips, PairedRot90, PairedElastic, PairedBrightnessContrast
    ]  # fmt: skip
    assert composed.transforms[3].target_interpolation == "nearest"
    inputs, targets = coordinate_batch()
    out, out_targets = composed(inputs, targets, seeded())
    assert out.shape == (6, 2, 8, 8) and set(out_targets.unique().tolist()) <= {0.0, 1.0, 2.0}
    heat = build_paired_transforms(["elastic"], target_interpolation="bilinear")
    assert heat.transforms[0].target_interpolation == "bilinear"
    own = build_paired_transforms(
        [{"elastic": {"target_interpolation": "nearest"}}], target_interpolation="bilinear"
    )
    assert own.transforms[0].target_interpolation == "nearest"
    assert build_paired_transforms(None) is None and build_paired_transforms([]) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["flip"], r"unknown transform 'flip'.*did you mean 'flips'"),
        ([{"elastic": {"alphaa": 3}}], r"augment\[0\] \(elastic\): unknown option 'alphaa'"),
        ([{"flips": {"p": 2}}], r"augment\[0\]: flips p: expected a probability"),
        ([{"random_crop": {"size": 0}}], r"random_crop size: expected a positive integer"),
        (["random_crop"], r"missing option\(s\) size"),
        (["flips", {"random_crop": {"size": 4}}], r"augment\[1\]: random_crop must come first"),
        ([{"elastic": {"target_interpolation": "cubic"}}], r"nearest, bilinear"),
        ([{"elastic": {"sigma": 0}}], r"elastic sigma: expected a number > 0"),
        ("flips", r"expected a list of transforms"),
    ],
)
def test_bad_specs_are_refused_clearly(spec, message):
    with pytest.raises(TransformError, match=message):
        build_paired_transforms(spec)


def test_mismatched_batches_are_refused():
    inputs, targets = coordinate_batch(count=4)
    with pytest.raises(TransformError, match="must share N, H and W"):
        PairedFlips()(inputs, targets[:, :, :6], seeded())
    with pytest.raises(TransformError, match=r"\(targets\): expected a floating-point"):
        PairedFlips()(inputs, targets.long(), seeded())
    with pytest.raises(TransformError, match="target_interpolation"):
        build_paired_transforms(["flips"], target_interpolation="area")
