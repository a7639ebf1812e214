"""Batch-level augmentation for dense tasks: one random draw moves an image and its target.

Every transform is called as ``transform(inputs, targets, generator)`` and returns
``(inputs, targets)``:
- inputs: float (N, C, H, W) images;
- targets: float (N, K, H, W) per-pixel targets: a class-index mask (K = 1) or heatmaps;
- generator: a torch.Generator. Each sample gets its own draw, and every draw comes from
  it, so a generator seeded the same way gives the same batch again (resume is exact).

Geometric transforms (crop, flips, rot90, elastic) move both tensors identically; the
photometric one (brightness_contrast) changes the inputs only. Crops, flips and rot90 move
whole pixels, so class indices stay exact. The elastic warp resamples: the inputs
bilinearly, the targets as ``target_interpolation`` says: "nearest" (the default) keeps a
class-index mask's values exact, "bilinear" suits heatmaps.

A recipe lists them like the classification transforms (`dlcc.training.transforms`);
random_crop, when present, must come first, so the rest work on the small windows::

    augment: [{random_crop: {size: 256}}, flips, rot90, {elastic: {alpha: 10, sigma: 10}},
              brightness_contrast]
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from dlcc.training.transforms import (
    TransformError,
    _like,
    _pair,
    build_entries,
    check_batch,
    crop_windows,
)

TARGET_INTERPOLATIONS = ("nearest", "bilinear")


def check_pair(inputs, targets, generator, who: str) -> None:
    """Raise TransformError unless inputs (N, C, H, W) and targets (N, K, H, W) are float
    batches of the same N, H and W, and generator a torch.Generator."""
    check_batch(inputs, generator, f"{who} (inputs)")
    check_batch(targets, generator, f"{who} (targets)")
    if inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
        raise TransformError(
            f"{who}: inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must "
            "share N, H and W (one target map per image, pixel for pixel)."
        )


def _probability(p, who: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise TransformError(f"{who} p: expected a probability in [0, 1], received {p!r}.")
    return float(p)


def _non_negative(value, who: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise TransformError(f"{who}: expected a number >= 0, received {value!r}.")
    return float(value)


def _interpolation(value, who: str) -> str:
    if value not in TARGET_INTERPOLATIONS:
        raise TransformError(
            f"{who} target_interpolation: expected one of {', '.join(TARGET_INTERPOLATIONS)}, "
            f"received {value!r}. Use nearest for class-index masks, bilinear for heatmaps."
        )
    return value


def _uniform(low: float, high: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count,) uniform on [low, high), drawn on the generator's device."""
    draw = torch.rand(count, generator=generator, device=generator.device)
    return low + (high - low) * draw


class PairedRandomCrop:
    """A ``size`` window at a random place per sample, the same window in both tensors.

    (N, C, H, W), (N, K, H, W) -> (N, C, h, w), (N, K, h, w). Draws N top offsets, then N
    left offsets, each uniform over the valid range. A window larger than the images is
    a TransformError (crop, do not pad: padding would invent target pixels).
    """

    def __init__(self, size: int | tuple[int, int]):
        self.size = _pair(size, "random_crop size")

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "random_crop")
        batch_size, _, height, width = inputs.shape
        crop_height, crop_width = self.size
        if crop_height > height or crop_width > width:
            raise TransformError(
                f"random_crop: a {crop_height}x{crop_width} window does not fit in "
                f"{height}x{width} images. Use a size of at most [{height}, {width}]."
            )
        draw = {"generator": generator, "device": generator.device}
        top = torch.randint(0, height - crop_height + 1, (batch_size,), **draw)  # (N,)
        left = torch.randint(0, width - crop_width + 1, (batch_size,), **draw)  # (N,)
        return (
            _like(crop_windows(inputs, top, left, self.size), inputs),  # (N, C, h, w)
            _like(crop_windows(targets, top, left, self.size), targets),  # (N, K, h, w)
        )

    def __repr__(self) -> str:
        return f"PairedRandomCrop(size={self.size})"


class PairedFlips:
    """Mirror left-right with probability ``p`` and, independently, upside-down with
    probability ``p``, per sample; both tensors alike. Shapes are unchanged.

    Draws N uniforms for the horizontal flips, then N for the vertical ones.
    """

    def __init__(self, p: float = 0.5):
        self.p = _probability(p, "flips")

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "flips")
        count, device = inputs.shape[0], generator.device
        horizontal = torch.rand(count, generator=generator, device=device) < self.p  # (N,)
        vertical = torch.rand(count, generator=generator, device=device) < self.p  # (N,)
        return tuple(
            _like(_flip_where(_flip_where(batch, horizontal, -1), vertical, -2), batch)
            for batch in (inputs, targets)
        )

    def __repr__(self) -> str:
        return f"PairedFlips(p={self.p})"


def _flip_where(batch: torch.Tensor, flip: torch.Tensor, dim: int) -> torch.Tensor:
    """Sample n of batch (N, ...) flipped along `dim` where flip[n]; (N,) bool flip."""
    return torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(dim), batch)


class PairedRot90:
    """Rotate each sample by k quarter turns, k uniform per sample; both tensors alike.

    Square images: k in {0, 1, 2, 3}. Non-square images (H != W) cannot turn by a quarter
    within one batch tensor, so there k is in {0, 2} (a half turn or none). Rotation is
    ``torch.rot90(image, k, dims=(-2, -1))``. Draws N integers.
    """

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "rot90")
        count, device = inputs.shape[0], generator.device
        square = inputs.shape[2] == inputs.shape[3]
        turns = torch.randint(0, 4 if square else 2, (count,), generator=generator, device=device)
        turns = turns if square else 2 * turns  # (N,) quarter turns
        return tuple(_like(_rotate(batch, turns), batch) for batch in (inputs, targets))

    def __repr__(self) -> str:
        return "PairedRot90()"


def _rotate(batch: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Sample n of batch (N, C, H, W) turned by turns[n] quarter turns."""
    turns = turns.to(batch.device)[:, None, None, None]  # (N, 1, 1, 1)
    rotated = batch
    for k in (1, 2, 3):  # a loop over the 3 turns, not over the samples
        if k % 2 == 1 and batch.shape[2] != batch.shape[3]:
            continue
        rotated = torch.where(turns == k, torch.rot90(batch, k, dims=(-2, -1)), rotated)
    return rotated


class PairedElastic:
    """Simard-style elastic deformation (Simard, Steinkraus & Platt, 2003).

    Per sample, a displacement field: uniform noise in [-1, 1] for each pixel and each of
    the two directions, smoothed with a Gaussian of ``sigma`` pixels (a separable
    convolution), then scaled so that its largest displacement is ``alpha`` pixels. To keep
    it cheap, the noise is drawn and smoothed on a grid ``sigma // 2`` times coarser than
    the image (the smoothing removes what the coarse grid lacks) and resized bicubically. Each
    sample is warped with probability ``p``; the others are returned untouched. Inputs are
    resampled bilinearly with reflection at the borders, targets as
    ``target_interpolation`` says (nearest keeps class indices exact). Shapes unchanged.

    Draws N x 2 x h x w uniforms (the coarse grid), then N for the choice of samples.
    """

    def __init__(
        self,
        alpha: float = 10.0,
        sigma: float = 10.0,
        p: float = 0.5,
        target_interpolation: str = "nearest",
    ):
        self.alpha = _non_negative(alpha, "elastic alpha")
        self.sigma = _non_negative(sigma, "elastic sigma")
        if self.sigma == 0:
            raise TransformError("elastic sigma: expected a number > 0 (pixels), received 0.")
        self.p = _probability(p, "elastic")
        self.target_interpolation = _interpolation(target_interpolation, "elastic")

    def displacement(self, shape: tuple[int, int, int], generator: torch.Generator):
        """(N, H, W, 2) displacements in pixels (x then y), on the generator's device."""
        count, height, width = shape
        factor = max(1, int(self.sigma // 2))  # coarse grid spacing, in pixels
        coarse = (math.ceil((height - 1) / factor) + 1, math.ceil((width - 1) / factor) + 1)
        uniform = torch.rand((count * 2, 1, *coarse), generator=generator, device=generator.device)
        noise = uniform * 2 - 1  # (2N, 1, h, w) in [-1, 1]
        field = _gaussian_blur(noise, self.sigma / factor)  # (2N, 1, h, w)
        if factor > 1:
            field = F.interpolate(field, size=(height, width), mode="bicubic", align_corners=True)
        field = field.view(count, 2, height, width)
        largest = field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)  # (N,1,1,1)
        return (field * (self.alpha / largest)).permute(0, 2, 3, 1)  # (N, H, W, 2)

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "elastic")
        count, _, height, width = inputs.shape
        shift = self.displacement((count, height, width), generator).to(inputs.device)
        warp = torch.rand(count, generator=generator, device=generator.device) < self.p
        warp = warp.to(inputs.device)[:, None, None, None]  # (N, 1, 1, 1)
        rows = torch.arange(height, device=inputs.device, dtype=torch.float32)
        cols = torch.arange(width, device=inputs.device, dtype=torch.float32)
        grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")  # (H, W) each
        pixel_grid = torch.stack([grid_x, grid_y], dim=-1) + shift  # (N, H, W, 2), pixels
        # to grid_sample's [-1, 1], corners at pixel centres (align_corners=True)
        scale = torch.tensor([max(width - 1, 1), max(height - 1, 1)], device=inputs.device)
        grid = pixel_grid * (2 / scale) - 1  # (N, H, W, 2)
        warped_inputs = _sample(inputs, grid, "bilinear")
        warped_targets = _sample(targets, grid, self.target_interpolation)
        return (
            _like(torch.where(warp, warped_inputs, inputs), inputs),
            _like(torch.where(warp, warped_targets, targets), targets),
        )

    def __repr__(self) -> str:
        return (
            f"PairedElastic(alpha={self.alpha}, sigma={self.sigma}, p={self.p}, "
            f"target_interpolation={self.target_interpolation!r})"
        )


def _sample(batch: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """grid_sample of batch (N, C, H, W) at grid (N, H, W, 2), in float32 for accuracy."""
    sampled = F.grid_sample(
        batch.float(), grid, mode=mode, padding_mode="reflection", align_corners=True
    )
    return sampled.to(batch.dtype)


def _gaussian_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """planes (M, 1, H, W) convolved with a Gaussian of `sigma` pixels, separably, with
    zero padding (the kernel is cut at 3 sigma, and at the image's size)."""
    height, width = planes.shape[-2:]
    radius = max(1, min(math.ceil(3 * sigma), max(height, width) - 1))
    offsets = torch.arange(-radius, radius + 1, device=planes.device, dtype=planes.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()  # (2r + 1,)
    blurred = F.conv2d(planes, kernel.view(1, 1, 1, -1), padding=(0, radius))  # along W
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))  # along H


class PairedBrightnessContrast:
    """Inputs only (targets untouched): x -> (x - m) * c + m + b per sample, where m is the
    sample's mean over its channels and pixels, c ~ U(1 - contrast, 1 + contrast) and
    b ~ U(-brightness, brightness) in units of the (standardised) input. Each sample is
    changed with probability ``p``. Shapes unchanged.

    Draws N contrasts, then N brightness offsets, then N uniforms for the choice.
    """

    def __init__(self, brightness: float = 0.1, contrast: float = 0.1, p: float = 1.0):
        self.brightness = _non_negative(brightness, "brightness_contrast brightness")
        self.contrast = _non_negative(contrast, "brightness_contrast contrast")
        self.p = _probability(p, "brightness_contrast")

    def __call__(self, inputs, targets, generator):
        check_pair(inputs, targets, generator, "brightness_contrast")
        count = inputs.shape[0]
        gain = _uniform(1 - self.contrast, 1 + self.contrast, count, generator)  # (N,)
        offset = _uniform(-self.brightness, self.brightness, count, generator)  # (N,)
        apply = torch.rand(count, generator=generator, device=generator.device) < self.p
        gain = gain.to(inputs.device, inputs.dtype)[:, None, None, None]  # (N, 1, 1, 1)
        offset = offset.to(inputs.device, inputs.dtype)[:, None, None, None]
        mean = inputs.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        changed = (inputs - mean) * gain + mean + offset  # (N, C, H, W)
        changed = torch.where(apply.to(inputs.device)[:, None, None, None], changed, inputs)
        return _like(changed, inputs), targets

    def __repr__(self) -> str:
        return (
            f"PairedBrightnessContrast(brightness={self.brightness}, "
            f"contrast={self.contrast}, p={self.p})"
        )


class PairedCompose:
    """Apply paired transforms in order, each with the same generator.

    (N, C, H, W), (N, K, H, W) -> (N, C, h, w), (N, K, h, w). With no transforms it
    returns copies.
    """

    def __init__(self, transforms: Sequence[Callable]):
        transforms = list(transforms)
        for transform in transforms:
            if not callable(transform):
                raise TransformError(
                    "PairedCompose: expected transforms called as t(inputs, targets, "
                    f"generator), received {transform!r}."
                )
        self.transforms = transforms

    def __call__(self, inputs, targets, generator):
        if not self.transforms:
            check_pair(inputs, targets, generator, "PairedCompose")
            return inputs.clone(), targets.clone()
        for transform in self.transforms:
            inputs, targets = transform(inputs, targets, generator)
        return inputs, targets

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(repr(t) for t in self.transforms)}])"


PAIRED_TRANSFORMS: dict[str, type] = {
    "random_crop": PairedRandomCrop,
    "flips": PairedFlips,
    "rot90": PairedRot90,
    "elastic": PairedElastic,
    "brightness_contrast": PairedBrightnessContrast,
}


def paired_transform_names() -> list[str]:
    """The names `build_paired_transforms` accepts, sorted."""
    return sorted(PAIRED_TRANSFORMS)


def build_paired_transforms(
    spec: Sequence | None, *, target_interpolation: str = "nearest"
) -> PairedCompose | None:
    """Build the paired transforms a recipe lists, or None when it lists none.

    The format is `dlcc.training.transforms.build_transforms`'s: a name (``"flips"``) or a
    one-key mapping to options (``{"random_crop": {"size": 256}}``). `target_interpolation`
    is the default for every transform that resamples targets (elastic); an entry's own
    option overrides it. random_crop, when listed, must be the first entry.
    Raises TransformError, naming the entry and the valid choices, for anything else.
    """
    target_interpolation = _interpolation(target_interpolation, "augment")
    registry = {
        name: _with_default(cls, target_interpolation) for name, cls in PAIRED_TRANSFORMS.items()
    }
    example = "[{random_crop: {size: 256}}, flips, rot90]"
    transforms = build_entries(spec, registry, example)
    if not transforms:
        return None
    for index, transform in enumerate(transforms[1:], start=1):
        if isinstance(transform, PairedRandomCrop):
            raise TransformError(
                f"augment[{index}]: random_crop must come first, so that the transforms "
                "after it work on the small windows; move it to the start of the list."
            )
    return PairedCompose(transforms)


def _with_default(cls: type, target_interpolation: str):
    """`cls`, with `target_interpolation` as its default when it takes that option."""
    if "target_interpolation" not in inspect.signature(cls).parameters:
        return cls
    return functools.partial(cls, target_interpolation=target_interpolation)


__all__ = [
    "PAIRED_TRANSFORMS",
    "PairedBrightnessContrast",
    "PairedCompose",
    "PairedElastic",
    "PairedFlips",
    "PairedRandomCrop",
    "PairedRot90",
    "build_paired_transforms",
    "check_pair",
    "paired_transform_names",
]
