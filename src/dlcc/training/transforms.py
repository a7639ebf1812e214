"""Batch-level data augmentation on tensors, on whichever device the batch lives.

Every transform is called as ``transform(batch, generator)``: ``batch`` is a float tensor
(N, C, H, W), ``generator`` a torch.Generator, and the result is a new tensor of the same
dtype and memory format (channels_last stays channels_last). Each sample gets its own
random draw, and every draw comes from ``generator``, so a generator seeded the same way
gives the same batch again: that is what makes a resumed run bit-identical.

Working on whole batches, with no Python loop over samples, keeps augmentation cheap on a
CPU and lets it run on the GPU next to the model.

A recipe lists transforms by name, strings for the ones without options and one-key
mappings for the others::

    augment: [{random_crop: {padding: 4, padding_mode: reflect}}, hflip]

    build_transforms([{"random_crop": {"padding": 4}}, "hflip"])
    # Compose([RandomCrop(size=None, padding=4, padding_mode='zeros'), RandomHorizontalFlip(p=0.5)])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from dlcc.errors import DlccError
from dlcc.suggest import did_you_mean


class TransformError(DlccError):
    """An augmentation was asked for with a bad name or option, or given a bad batch."""


def check_batch(batch, generator, who: str) -> None:
    """Raise TransformError unless ``batch`` is a float (N, C, H, W) tensor and
    ``generator`` a torch.Generator."""
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4:
        received = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise TransformError(
            f"{who}: expected a batch of images (N, C, H, W), received {received}. "
            "Augment whole batches; add a batch axis with x.unsqueeze(0) for one image."
        )
    if not batch.is_floating_point():
        raise TransformError(
            f"{who}: expected a floating-point batch, received dtype {batch.dtype}. "
            "Convert with batch.float() first."
        )
    if not isinstance(generator, torch.Generator):
        raise TransformError(
            f"{who}: expected a torch.Generator for its random draws, received "
            f"{type(generator).__name__}. Pass e.g. torch.Generator().manual_seed(0)."
        )


def _is_channels_last(batch: torch.Tensor) -> bool:
    """True when ``batch`` is stored channels_last (and not also plain contiguous, as when
    C == 1 or H == W == 1, where the two layouts coincide)."""
    return not batch.is_contiguous() and batch.is_contiguous(memory_format=torch.channels_last)


def _like(output: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """``output`` in the memory format of ``batch`` (channels_last in, channels_last out)."""
    if _is_channels_last(batch):
        return output.contiguous(memory_format=torch.channels_last)
    return output.contiguous()


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise TransformError(
            f"{what}: expected a positive integer or [height, width], received {value!r}."
        )
    return int(value[0]), int(value[1])


class RandomCrop:
    """Pad each image, then cut out a window of ``size`` at a random place per sample.

    Args:
        size: (height, width) of the output, or one int for a square; None keeps the
            input's height and width (the usual "pad 4, crop back to 32x32").
        padding: pixels added on every side first.
        padding_mode: "zeros" pads with 0 (the mean, for normalised images) or "reflect"
            mirrors the image at its border (needs padding < H and < W).

    (N, C, H, W) -> (N, C, size_h, size_w). The offsets come from `sample_offsets`:
    all N top offsets first, then all N left offsets, each uniform over the valid range.
    """

    padding_modes = ("zeros", "reflect")

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        padding: int = 0,
        padding_mode: str = "zeros",
    ):
        self.size = None if size is None else _pair(size, "random_crop size")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise TransformError(
                f"random_crop padding: expected an integer >= 0, received {padding!r}."
            )
        if padding_mode not in self.padding_modes:
            raise TransformError(
                f"random_crop padding_mode: expected one of {', '.join(self.padding_modes)}, "
                f"received {padding_mode!r}{did_you_mean(str(padding_mode), self.padding_modes)}."
            )
        self.padding = padding
        self.padding_mode = padding_mode

    def pad(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H + 2p, W + 2p), padded as `padding_mode` says."""
        height, width = batch.shape[-2:]
        p = self.padding
        if self.padding_mode == "reflect" and p >= min(height, width):
            raise TransformError(
                f"random_crop: reflect padding must be smaller than the image, received "
                f"padding={p} for {height}x{width} images. Use padding < {min(height, width)} "
                "or padding_mode='zeros'."
            )
        mode = "constant" if self.padding_mode == "zeros" else "reflect"
        return F.pad(batch, (p, p, p, p), mode=mode)

    def sample_offsets(
        self, batch_size: int, max_top: int, max_left: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top and left corners, (batch_size,) each, uniform on [0, max_top] and [0, max_left].

        They are drawn on the generator's device (a CUDA generator draws on the GPU).
        """
        device = generator.device
        top = torch.randint(0, max_top + 1, (batch_size,), generator=generator, device=device)
        left = torch.randint(0, max_left + 1, (batch_size,), generator=generator, device=device)
        return top, left

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(batch, generator, "random_crop")
        batch_size, _, height, width = batch.shape
        crop_height, crop_width = self.size or (height, width)
        padded = self.pad(batch)  # (N, C, H + 2p, W + 2p)
        max_top = padded.shape[2] - crop_height
        max_left = padded.shape[3] - crop_width
        if max_top < 0 or max_left < 0:
            raise TransformError(
                f"random_crop: a {crop_height}x{crop_width} window does not fit in "
                f"{height}x{width} images padded by {self.padding}. Use a smaller size or "
                "more padding."
            )
        top, left = self.sample_offsets(batch_size, max_top, max_left, generator)
        return _like(crop_windows(padded, top, left, (crop_height, crop_width)), batch)

    def __repr__(self) -> str:
        return (
            f"RandomCrop(size={self.size}, padding={self.padding}, "
            f"padding_mode={self.padding_mode!r})"
        )


def crop_windows(
    batch: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Window n of ``size`` = (h, w) at (top[n], left[n]) of image n, for every n at once.

    batch (N, C, H, W), top and left (N,) integer tensors (any device) -> (N, C, h, w),
    channels_last when `batch` is. The windows must lie inside the images.
    """
    batch_size, channels, _, width = batch.shape
    crop_height, crop_width = size
    # Flat index of every output pixel in its image: one gather crops the whole batch.
    # Pixel (i, j) of window n is pixel (top[n] + i, left[n] + j) of image n.
    device = batch.device
    rows = top.to(device)[:, None, None] + torch.arange(crop_height, device=device)[:, None]
    cols = left.to(device)[:, None, None] + torch.arange(crop_width, device=device)
    index = (rows * width + cols).flatten(1)  # (N, h * w)
    if _is_channels_last(batch):
        # gather whole pixels (all C values side by side in memory)
        pixels = batch.permute(0, 2, 3, 1).flatten(1, 2)  # (N, H * W, C), a view
        windows = pixels.gather(1, index[:, :, None].expand(-1, -1, channels))
        windows = windows.view(batch_size, crop_height, crop_width, channels)
        return windows.permute(0, 3, 1, 2)  # (N, C, h, w), channels_last
    planes = batch.flatten(2)  # (N, C, H * W), a view
    windows = planes.gather(2, index[:, None, :].expand(-1, channels, -1))
    return windows.view(batch_size, channels, crop_height, crop_width)  # (N, C, h, w)


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``, independently per sample.

    (N, C, H, W) -> (N, C, H, W). Draws N uniforms from the generator (even when p is
    0 or 1, so the random stream does not depend on p); sample n flips when u[n] < p.
    """

    def __init__(self, p: float = 0.5):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise TransformError(f"hflip p: expected a probability in [0, 1], received {p!r}.")
        self.p = float(p)

    def sample_flips(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(batch_size,) booleans, True where a sample is flipped; on the generator's device."""
        return torch.rand(batch_size, generator=generator, device=generator.device) < self.p

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(batch, generator, "hflip")
        flip = self.sample_flips(batch.shape[0], generator).to(batch.device)  # (N,)
        flipped = torch.where(flip[:, None, None, None], batch.flip(-1), batch)  # (N, C, H, W)
        return _like(flipped, batch)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Cutout:
    """Zero a ``size`` x ``size`` square at a random centre in each image (DeVries & Taylor,
    2017, "Improved regularization of convolutional neural networks with cutout").

    (N, C, H, W) -> (N, C, H, W). The centre is uniform over the image, so the square is
    clipped at the borders and can be partly outside, as in the paper. On normalised
    images zero is the dataset mean. Each sample is cut with probability ``p``.
    """

    def __init__(self, size: int = 16, p: float = 1.0):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise TransformError(f"cutout size: expected an integer >= 1, received {size!r}.")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise TransformError(f"cutout p: expected a probability in [0, 1], received {p!r}.")
        self.size, self.p = size, float(p)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(batch, generator, "cutout")
        n, _, height, width = batch.shape
        device = generator.device
        centre_y = torch.randint(0, height, (n,), generator=generator, device=device)
        centre_x = torch.randint(0, width, (n,), generator=generator, device=device)
        apply = torch.rand(n, generator=generator, device=device) < self.p  # (N,)
        low, high = self.size // 2, self.size - self.size // 2  # square = [c - low, c + high)
        rows = torch.arange(height, device=device)[None, :]  # (1, H)
        cols = torch.arange(width, device=device)[None, :]  # (1, W)
        in_rows = (rows >= (centre_y - low)[:, None]) & (rows < (centre_y + high)[:, None])
        in_cols = (cols >= (centre_x - low)[:, None]) & (cols < (centre_x + high)[:, None])
        square = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]  # (N, H, W)
        keep = (~square).to(batch.dtype).to(batch.device)[:, None]  # (N, 1, H, W)
        return _like(batch * keep, batch)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size}, p={self.p})"


class Normalize:
    """(x - mean[c]) / std[c] for each channel c. (N, C, H, W) -> (N, C, H, W).

    The dataset loader already normalises images; this is for data that is not, or for a
    second normalisation after other transforms. No randomness: the generator is unused.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = _floats(mean, "normalize mean")
        self.std = _floats(std, "normalize std")
        if len(self.mean) != len(self.std):
            raise TransformError(
                f"normalize: expected one mean and one std per channel, received "
                f"{len(self.mean)} means and {len(self.std)} stds."
            )
        if not all(s > 0 for s in self.std):
            raise TransformError(f"normalize std: expected positive numbers, received {std!r}.")

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(batch, generator, "normalize")
        channels = batch.shape[1]
        if len(self.mean) != channels:
            raise TransformError(
                f"normalize: expected {len(self.mean)}-channel images (one mean per channel), "
                f"received {channels} channels. Give mean and std {channels} entries each."
            )
        mean = torch.tensor(self.mean, dtype=batch.dtype, device=batch.device)
        std = torch.tensor(self.std, dtype=batch.dtype, device=batch.device)
        normalised = (batch - mean[:, None, None]) / std[:, None, None]  # (N, C, H, W)
        return _like(normalised, batch)

    def __repr__(self) -> str:
        return f"Normalize(mean={list(self.mean)}, std={list(self.std)})"


def _floats(values, what: str) -> tuple[float, ...]:
    if isinstance(values, int | float) and not isinstance(values, bool):
        values = (values,)
    if (
        isinstance(values, str)
        or not isinstance(values, Sequence)
        or not values
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        or not all(math.isfinite(v) for v in values)
    ):
        raise TransformError(f"{what}: expected a list of numbers, received {values!r}.")
    return tuple(float(v) for v in values)


class Compose:
    """Apply transforms in order, each with the same generator. (N, C, H, W) -> (N, C, h, w)."""

    def __init__(self, transforms: Sequence[Callable]):
        transforms = list(transforms)
        for transform in transforms:
            if not callable(transform):
                raise TransformError(
                    f"Compose: expected transforms called as t(batch, generator), received "
                    f"{transform!r}."
                )
        self.transforms = transforms

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.transforms:
            check_batch(batch, generator, "Compose")
            return batch.clone()
        for transform in self.transforms:
            batch = transform(batch, generator)
        return batch

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


TRANSFORMS: dict[str, type] = {
    "random_crop": RandomCrop,
    "hflip": RandomHorizontalFlip,
    "cutout": Cutout,
    "normalize": Normalize,
}


def transform_names() -> list[str]:
    """The names `build_transforms` accepts, sorted."""
    return sorted(TRANSFORMS)


def build_transforms(spec: Sequence | None) -> Compose | None:
    """Build the transforms a recipe lists, or None when it lists none.

    Each entry is a name (``"hflip"``) or a one-key mapping from a name to its options
    (``{"random_crop": {"padding": 4}}``; ``{"hflip": None}`` is the same as ``"hflip"``).
    Raises TransformError, naming the entry and the valid choices, for anything else.
    """
    transforms = build_entries(spec, TRANSFORMS, "[{random_crop: {padding: 4}}, hflip]")
    return Compose(transforms) if transforms else None


def build_entries(spec: Sequence | None, registry: dict, example: str) -> list | None:
    """The transforms a recipe's list names, built from ``registry`` (name -> class).

    The one parser of the ``augment:`` format, for `build_transforms` and the paired
    (dense-task) transforms; `example` is a valid list shown when `spec` is not a list.
    """
    if spec is None:
        return None
    if isinstance(spec, str | dict) or not isinstance(spec, Sequence):
        raise TransformError(
            f"augment: expected a list of transforms, received {spec!r}. Write e.g. {example}."
        )
    return [_build_one(entry, index, registry) for index, entry in enumerate(spec)]


def _build_one(entry, index: int, registry: dict):
    names = ", ".join(sorted(registry))
    where = f"augment[{index}]"
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, options),) = entry.items()
        options = {} if options is None else options
    else:
        raise TransformError(
            f"{where}: expected a name or a one-key mapping {{name: {{option: value}}}}, "
            f"received {entry!r}. Valid names: {names}."
        )
    if name not in registry:
        raise TransformError(
            f"{where}: unknown transform {name!r}{did_you_mean(str(name), registry)}. "
            f"Valid names: {names}."
        )
    transform_class = registry[name]
    parameters = inspect.signature(transform_class).parameters
    if not isinstance(options, dict):
        raise TransformError(
            f"{where} ({name}): expected a mapping of options, received {options!r}. "
            f"Options: {', '.join(parameters) or 'none'}."
        )
    for key in options:
        if key not in parameters:
            raise TransformError(
                f"{where} ({name}): unknown option {key!r}{did_you_mean(str(key), parameters)}. "
                f"Valid options: {', '.join(parameters)}."
            )
    missing = [key for key, p in parameters.items() if p.default is p.empty and key not in options]
    if missing:
        raise TransformError(f"{where} ({name}): missing option(s) {', '.join(missing)}.")
    try:
        return transform_class(**options)
    except TransformError as error:
        raise TransformError(f"{where}: {error}") from None


class ImagesOnly:
    """An image transform in the loop's form ``(inputs, targets, generator) -> both``.

    Classification labels do not move when an image is flipped: only the inputs change.
    """

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
        return self.transform(inputs, generator), targets

    def __repr__(self) -> str:
        return f"ImagesOnly({self.transform!r})"


def build_augmentation(spec: Sequence | None, dense: bool = False) -> Callable | None:
    """The recipe's ``augment`` list as the loop calls it: (inputs, targets, generator).

    dense: the task's targets are maps (masks, heatmaps) that must move with the images,
    so the paired transforms are used (`dlcc.training.paired_transforms`); otherwise the
    image transforms above, with the targets passed through. None when nothing is asked.
    """
    if not spec:
        return None
    if dense:
        from dlcc.training.paired_transforms import build_paired_transforms

        return build_paired_transforms(spec)
    return ImagesOnly(build_transforms(spec))
