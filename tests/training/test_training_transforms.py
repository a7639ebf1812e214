"""Batch augmentation against per-sample references written as plain loops, on random
shapes and options; determinism, dtypes, memory formats, and recipe errors."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from dlcc.errors import DlccError  # noqa: E402
from dlcc.training.transforms import (  # noqa: E402
    Compose,
    Cutout,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TransformError,
    build_transforms,
    transform_names,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_batch(shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=seeded(1000 + seed)).to(dtype)


# ---- per-sample references, one pixel at a time -----------------------------------------


def padded_pixel(image, row, col, padding, mode):
    """Pixel (row, col) of ``image`` (C, H, W) padded by ``padding``: a (C,) tensor."""
    _, height, width = image.shape
    source_row, source_col = row - padding, col - padding
    inside = 0 <= source_row < height and 0 <= source_col < width
    if mode == "zeros":
        return image[:, source_row, source_col] if inside else torch.zeros_like(image[:, 0, 0])

    def reflect(index, size):  # mirror at the border pixel, which is not repeated
        if index < 0:
            return -index
        if index >= size:
            return 2 * (size - 1) - index
        return index

    return image[:, reflect(source_row, height), reflect(source_col, width)]


def reference_crop(batch, tops, lefts, size, padding, mode):
    crop_height, crop_width = size
    output = torch.empty(batch.shape[0], batch.shape[1], crop_height, crop_width)
    for n in range(batch.shape[0]):
        for i in range(crop_height):
            for j in range(crop_width):
                output[n, :, i, j] = padded_pixel(
                    batch[n], tops[n] + i, lefts[n] + j, padding, mode
                )
    return output


def random_crop_cases(count: int):
    rng = random.Random(0)
    cases = []
    for _ in range(count):
        channels, height, width = rng.choice([1, 2, 3]), rng.randint(3, 9), rng.randint(3, 9)
        mode = rng.choice(["zeros", "reflect"])
        padding = rng.randint(0, min(height, width) - 1)
        size = rng.choice([None, (rng.randint(1, height + 2 * padding), rng.randint(1, width))])
        cases.append((rng.randint(1, 6), channels, height, width, padding, size, mode))
    return cases


@pytest.mark.parametrize("case", random_crop_cases(25))
def test_random_crop_matches_a_per_sample_loop(case):
    batch_size, channels, height, width, padding, size, mode = case
    batch = random_batch((batch_size, channels, height, width))
    crop = RandomCrop(size, padding, mode)
    output = crop(batch, seeded(7))

    # The documented draws: all N tops, then all N lefts, uniform over the valid range.
    crop_size = size or (height, width)
    generator = seeded(7)
    tops = torch.randint(
        0, height + 2 * padding - crop_size[0] + 1, (batch_size,), generator=generator
    )
    lefts = torch.randint(
        0, width + 2 * padding - crop_size[1] + 1, (batch_size,), generator=generator
    )
    expected = reference_crop(batch, tops.tolist(), lefts.tolist(), crop_size, padding, mode)
    assert output.shape == (batch_size, channels, *crop_size)
    torch.testing.assert_close(output, expected, rtol=0, atol=0)


def test_random_crop_windows_cover_every_offset_and_nothing_else():
    # Black-box: each output is exactly one window of its padded image, and over many
    # samples every one of the (2p + 1)^2 windows turns up.
    padding, side = 2, 4
    batch = random_batch((400, 1, side, side))
    output = RandomCrop(padding=padding)(batch, seeded(3))
    padded = torch.nn.functional.pad(batch, (padding,) * 4)
    seen = set()
    for n in range(batch.shape[0]):
        matches = [
            (top, left)
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
            if torch.equal(output[n], padded[n, :, top : top + side, left : left + side])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == (2 * padding + 1) ** 2


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_hflip_matches_a_per_sample_loop(p):
    batch = random_batch((64, 2, 3, 5))
    output = RandomHorizontalFlip(p)(batch, seeded(5))
    flips = torch.rand(64, generator=seeded(5)) < p  # the documented draw
    for n in range(batch.shape[0]):
        expected = torch.flip(batch[n], dims=[-1]) if flips[n] else batch[n]
        assert torch.equal(output[n], expected)
    if p in (0.0, 1.0):
        assert torch.equal(output, batch.flip(-1) if p == 1.0 else batch)


def test_hflip_flips_about_a_fraction_p():
    batch = random_batch((4000, 1, 1, 2))
    output = RandomHorizontalFlip(0.3)(batch, seeded(11))
    flipped = (output[:, 0, 0, 0] != batch[:, 0, 0, 0]).float().mean().item()
    assert flipped == pytest.approx(0.3, abs=0.03)  # ~4 standard errors


def test_normalize_matches_a_per_channel_loop():
    batch = random_batch((4, 3, 5, 6))
    mean, std = [0.1, -0.2, 0.5], [0.5, 2.0, 1.5]
    output = Normalize(mean, std)(batch, seeded())
    for channel in range(3):
        expected = (batch[:, channel] - mean[channel]) / std[channel]
        torch.testing.assert_close(output[:, channel], expected)


def test_compose_applies_in_order_with_one_generator():
    batch = random_batch((8, 3, 8, 8))
    crop, flip = RandomCrop(6, padding=1), RandomHorizontalFlip()
    generator = seeded(2)
    expected = flip(crop(batch, generator), generator)
    assert torch.equal(Compose([crop, flip])(batch, seeded(2)), expected)
    assert repr(Compose([flip])) == "Compose([RandomHorizontalFlip(p=0.5)])"


# ---- determinism, dtypes, memory formats -------------------------------------------------

TRANSFORMS = [
    RandomCrop(padding=2),
    RandomCrop((5, 7), padding=1, padding_mode="reflect"),
    RandomHorizontalFlip(),
    Cutout(size=3),
    Normalize([0.5, 0.0, -1.0], [2.0, 1.0, 0.5]),
    Compose([RandomCrop(padding=3, padding_mode="reflect"), RandomHorizontalFlip(0.7)]),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_equal_seeds_give_equal_batches(transform):
    batch = random_batch((16, 3, 8, 8))
    first = transform(batch, seeded(42))
    assert torch.equal(first, transform(batch, seeded(42)))
    if not isinstance(transform, Normalize):
        assert not torch.equal(first, transform(batch, seeded(43)))
        generator = seeded(42)
        transform(batch, generator)
        assert not torch.equal(first, transform(batch, generator))  # the stream moved on


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_dtype_is_kept_and_input_untouched(transform, dtype):
    batch = random_batch((4, 3, 8, 8), dtype=dtype)
    original = batch.clone()
    output = transform(batch, seeded())
    assert output.dtype == dtype
    assert output.shape[:2] == batch.shape[:2]
    assert output.data_ptr() != batch.data_ptr()
    assert torch.equal(batch, original)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_channels_last_in_channels_last_out_same_values(transform):
    batch = random_batch((6, 3, 8, 8))
    expected = transform(batch, seeded(9))
    output = transform(batch.contiguous(memory_format=torch.channels_last), seeded(9))
    assert output.is_contiguous(memory_format=torch.channels_last)
    assert not output.is_contiguous()
    assert torch.equal(output, expected)
    assert transform(batch, seeded(9)).is_contiguous()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_give_the_cpu_result():
    batch = random_batch((32, 3, 8, 8))
    transform = Compose([RandomCrop(padding=2, padding_mode="reflect"), RandomHorizontalFlip()])
    expected = transform(batch, seeded(4))
    output = transform(batch.cuda(), seeded(4))  # CPU generator, GPU batch
    assert output.is_cuda
    assert torch.equal(output.cpu(), expected)
    cuda_generator = torch.Generator(device="cuda").manual_seed(4)
    first = transform(batch.cuda(), cuda_generator)
    assert torch.equal(first, transform(batch.cuda(), cuda_generator.manual_seed(4)))


# ---- errors ------------------------------------------------------------------------------


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_bad_batches_are_explained(transform):
    with pytest.raises(TransformError, match=r"expected a batch of images \(N, C, H, W\)"):
        transform(torch.zeros(3, 8, 8), seeded())
    with pytest.raises(TransformError, match="floating-point"):
        transform(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), seeded())
    with pytest.raises(TransformError, match=r"torch\.Generator"):
        transform(torch.zeros(2, 3, 8, 8), 0)


def test_crops_that_cannot_be_made_are_explained():
    with pytest.raises(TransformError, match=r"reflect padding must be smaller.*padding=4 for 4x4"):
        RandomCrop(padding=4, padding_mode="reflect")(torch.zeros(1, 1, 4, 4), seeded())
    with pytest.raises(TransformError, match="a 9x9 window does not fit in 4x4 images padded by 2"):
        RandomCrop(9, padding=2)(torch.zeros(1, 1, 4, 4), seeded())
    with pytest.raises(TransformError, match=r"expected 2-channel images.*received 3 channels"):
        Normalize([0, 0], [1, 1])(torch.zeros(1, 3, 4, 4), seeded())


def test_build_transforms_from_a_recipe():
    assert build_transforms(None) is None
    assert build_transforms([]) is None
    transforms = build_transforms(
        [{"random_crop": {"padding": 4, "padding_mode": "reflect"}}, "hflip", {"hflip": None},
         {"normalize": {"mean": [0.5], "std": [0.25]}}]
    )  # fmt: skip
    assert isinstance(transforms, Compose)
    assert repr(transforms) == (
        "Compose([RandomCrop(size=None, padding=4, padding_mode='reflect'), "
        "RandomHorizontalFlip(p=0.5), RandomHorizontalFlip(p=0.5), "
        "Normalize(mean=[0.5], std=[0.25])])"
    )
    assert transforms(torch.zeros(2, 1, 8, 8), seeded()).shape == (2, 1, 8, 8)
    assert transform_names() == ["cutout", "hflip", "normalize", "random_crop"]


@pytest.mark.parametrize(
    "spec, fragments",
    [
        (["hflp"], ["augment[0]", "unknown transform 'hflp'", "did you mean 'hflip'",
                    "Valid names: cutout, hflip, normalize, random_crop"]),
        ([{"random_crop": {"pading": 4}}], ["augment[0] (random_crop)", "did you mean 'padding'",
                                            "Valid options: size, padding, padding_mode"]),
        (["hflip", {"random_crop": {"padding": -1}}], ["augment[1]", "integer >= 0", "-1"]),
        ([{"random_crop": {"padding_mode": "reflct"}}], ["did you mean 'reflect'"]),
        ([{"random_crop": {"size": [0, 3]}}], ["size", "positive integer"]),
        ([{"hflip": {"p": 1.5}}], ["hflip p", "probability in [0, 1]"]),
        ([{"hflip": 0.5}], ["expected a mapping of options", "Options: p"]),
        ([{"hflip": {}, "random_crop": {}}], ["one-key mapping", "Valid names"]),
        ([3], ["expected a name or a one-key mapping"]),
        ([{"normalize": {"mean": [0.5]}}], ["missing option(s) std"]),
        ([{"normalize": {"mean": [0.5, 1], "std": [1]}}], ["one mean and one std per channel"]),
        ([{"normalize": {"mean": [0.5], "std": [0]}}], ["positive numbers"]),
        ([{"normalize": {"mean": "abc", "std": [1]}}], ["list of numbers"]),
        ("hflip", ["expected a list of transforms"]),
        ({"hflip": None}, ["expected a list of transforms"]),
    ],
)  # fmt: skip
def test_build_transforms_errors(spec, fragments):
    with pytest.raises(TransformError) as error:
        build_transforms(spec)
    message = one_line(error)
    for fragment in fragments:
        assert fragment in message
    assert isinstance(error.value, DlccError)


# ---- cutout ------------------------------------------------------------------------------


def test_cutout_zeroes_one_clipped_square_per_image_against_a_loop_reference():
    batch = random_batch((64, 2, 9, 11)) + 10.0  # no pixel is zero before the cut
    size = 4
    out = Cutout(size=size)(batch, seeded(3))
    generator = seeded(3)  # replay the draws: centre y, centre x, then the apply coins
    centre_y = torch.randint(0, 9, (64,), generator=generator)
    centre_x = torch.randint(0, 11, (64,), generator=generator)
    for n in range(64):
        expected = batch[n].clone()
        for y in range(9):
            for x in range(11):
                if (
                    centre_y[n] - 2 <= y < centre_y[n] + 2
                    and centre_x[n] - 2 <= x < centre_x[n] + 2
                ):
                    expected[:, y, x] = 0.0
        assert torch.equal(out[n], expected), f"sample {n}"


def test_cutout_with_p_zero_changes_nothing_and_bad_options_are_refused():
    batch = random_batch((8, 3, 8, 8))
    assert torch.equal(Cutout(size=4, p=0.0)(batch, seeded(0)), batch)
    with pytest.raises(DlccError, match="cutout size"):
        Cutout(size=0)
    with pytest.raises(DlccError, match="cutout p"):
        Cutout(p=1.5)
