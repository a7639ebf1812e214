"""Seeded, stratified hold-out splits, and per-channel normalisation statistics.

The validation split is carved from the training data with a seeded generator, so the same
seed always gives the same split. Normalisation statistics come from the training split
only, after the validation images are removed: using validation or test images to compute
them would leak information about the data we evaluate on.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlcc.errors import DataError

# A channel whose pixels are all equal (std 0) is left unscaled rather than divided by ~0.
MIN_STD = 1e-6
# Images per float64 block when computing statistics (bounds the temporary memory).
STATS_BLOCK_IMAGES = 2048


def holdout_count(val_size: int | float, total: int, *, what: str = "val_size") -> int:
    """Number of items `val_size` means out of `total`: an int is a count, a float a fraction.

    Raises DataError for a negative count, a fraction outside [0, 1), or a count that would
    leave no training data.
    """
    if isinstance(val_size, bool) or not isinstance(val_size, int | float | np.integer):
        raise DataError(
            f"{what} must be an int (a count) or a float (a fraction), got {val_size!r}"
        )
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise DataError(f"{what}={val_size} as a fraction must be in [0, 1)")
        count = round(val_size * total)
    else:
        count = int(val_size)
    if count < 0 or (count >= total and total > 0):
        raise DataError(
            f"{what}={val_size} asks for {count:,} of {total:,} images, leaving none to train "
            f"on: choose a count below {total:,} or a fraction below 1"
        )
    return count


def stratified_holdout_indices(
    labels: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick `count` indices so that each class is held out in proportion to its size.

    Each item gets the key ``(rank within its class + random jitter) / class size``, where the
    ranks follow a seeded shuffle; the `count` smallest keys are held out. This takes about
    ``count * class_size / total`` items of every class (exactly `count` in all) and is
    deterministic for a given generator state.

    Args:
        labels: int array of shape (N,).
        count: how many indices to return, 0 <= count <= N.
        rng: the seeded generator that decides which items of each class are chosen.

    Returns:
        sorted int64 array of shape (count,) of distinct indices into `labels`.
    """
    total = len(labels)
    order = rng.permutation(total)  # (N,) the shuffled visiting order
    shuffled_labels = labels[order]
    keys = np.empty(total, dtype=np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(shuffled_labels == label)  # positions in `order`
        ranks = np.arange(len(members), dtype=np.float64)
        keys[order[members]] = (ranks + rng.random(len(members))) / len(members)
    # A stable sort on the keys; ties (rare) are broken by index, still deterministic.
    chosen = np.argsort(keys, kind="stable")[:count]
    return np.sort(chosen).astype(np.int64)


def split_holdout(
    images: np.ndarray,
    labels: np.ndarray,
    holdout_size: int | float,
    *,
    seed: int,
    what: str = "val_size",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split (images, labels) into kept and held-out parts, stratified by label, seeded.

    Both parts keep the original order of their items.

    Args:
        images: array of shape (N, ...); labels: int array of shape (N,).
        holdout_size: an int count, or a float fraction of N, to hold out.
        seed: the same seed always gives the same split.

    Returns:
        kept_images (N - k, ...), kept_labels (N - k,), held_images (k, ...), held_labels (k,).
    """
    count = holdout_count(holdout_size, len(labels), what=what)
    held = stratified_holdout_indices(labels, count, np.random.default_rng(seed))
    kept_mask = np.ones(len(labels), dtype=bool)
    kept_mask[held] = False
    return images[kept_mask], labels[kept_mask], images[held], labels[held]


def channel_mean_std(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all images and pixels.

    Args:
        images: array of shape (N, C, H, W) (the training split only).

    Returns:
        mean, std: float32 arrays of shape (C,) (population std, ddof=0). A channel with std
        below 1e-6 gets std 1, so normalising it subtracts the mean and divides by nothing.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise DataError(
            f"normalisation needs at least one training image of shape (C, H, W); "
            f"got an array of shape {images.shape}"
        )
    count = images.shape[0] * images.shape[2] * images.shape[3]
    # Two passes over blocks of images in float64: accurate (no E[x^2] - E[x]^2
    # cancellation) without a float64 copy of the whole split (345 MB for MNIST).
    total = np.zeros(images.shape[1], dtype=np.float64)
    for block in _image_blocks(images):
        total += block.sum(axis=(0, 2, 3))
    mean = total / count  # (C,)
    squared_deviation = np.zeros(images.shape[1], dtype=np.float64)
    for block in _image_blocks(images):
        squared_deviation += ((block - mean[:, np.newaxis, np.newaxis]) ** 2).sum(axis=(0, 2, 3))
    std = np.sqrt(squared_deviation / count)  # (C,)
    std[std < MIN_STD] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _image_blocks(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, images.shape[0], STATS_BLOCK_IMAGES):
        yield images[start : start + STATS_BLOCK_IMAGES].astype(np.float64)  # (b, C, H, W)


def normalize_images(
    images: np.ndarray, mean: np.ndarray, std: np.ndarray, *, in_place: bool = False
) -> np.ndarray:
    """``(images - mean) / std`` per channel.

    Args:
        images: float array of shape (N, C, H, W); mean, std: shape (C,).
        in_place: overwrite `images` (which must be float32) instead of allocating a copy.

    Returns:
        float32 array of shape (N, C, H, W).
    """
    mean = np.asarray(mean, dtype=np.float32)[np.newaxis, :, np.newaxis, np.newaxis]
    std = np.asarray(std, dtype=np.float32)[np.newaxis, :, np.newaxis, np.newaxis]
    if in_place and images.dtype == np.float32:
        images -= mean
        images /= std
        return images
    return (images.astype(np.float32) - mean) / std
