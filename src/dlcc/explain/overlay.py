"""Images in, heat maps over them out: channel conversion, resizing, the overlay picture."""

from __future__ import annotations

import numpy as np

from dlcc.explain.methods import ExplainError

MIN_DISPLAY_SIDE = 256  # small images (8x8 digits) are enlarged to at least this, nearest


def unit_pixels(array: np.ndarray, channels: int, where: str) -> tuple[np.ndarray, str | None]:
    """An image file's pixels -> ((H, W, channels) float32 in [0, 1], a note or None).

    8-bit / 255, 16-bit / 65535 (the training loader's rule); alpha dropped; grey is
    repeated to RGB and RGB averaged to grey (ITU-R 601 luma) when the model wants the other,
    with a note saying so.
    """
    from dlcc.segmentation.predictor import image_channels, scale_to_unit

    found = image_channels(array, where)  # PredictError for 2 channels, 5, ...
    pixels = scale_to_unit(array)
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels[..., :found]  # (H, W, found)
    note = None
    if found == 1 and channels == 3:
        pixels = np.repeat(pixels, 3, axis=-1)
        note = f"{where}: greyscale image repeated to RGB for an RGB model"
    elif found == 3 and channels == 1:
        luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        pixels = (pixels @ luma)[..., None]
        note = f"{where}: RGB image converted to greyscale for a greyscale model"
    elif found != channels:
        raise ExplainError(
            f"{where}: the model takes {channels}-channel images, received {found} channels"
        )
    return np.ascontiguousarray(pixels, dtype=np.float32), note


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) float32 -> (height, width, C), bilinear, channel by channel (PIL mode F)."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels
    channels = [
        np.asarray(Image.fromarray(pixels[..., c]).resize((width, height), Image.BILINEAR))
        for c in range(pixels.shape[-1])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def standardise(pixels: np.ndarray, mean, std) -> np.ndarray:
    """(H, W, C) pixels in [0, 1] -> (C, H, W) float32 model input, (x - mean) / std."""
    chw = np.moveaxis(pixels, -1, 0).astype(np.float32)
    mean = np.asarray(mean, dtype=np.float32)[:, None, None]
    std = np.asarray(std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((chw - mean) / std)


def normalise_map(heat: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W) in [0, 1]: negatives (evidence against) at 0, the maximum at 1."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0, None)
    top = float(heat.max())
    return heat / top if top > 0 else heat


def heatmap_overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, C) pixels in [0, 1] and an (H, W) map -> (H', W', 3) uint8 picture.

    The image (grey, or RGB as it is) under the map coloured with matplotlib's "jet"
    (blue: none, red: the most), at `alpha`; enlarged (nearest) to a side of at least
    MIN_DISPLAY_SIDE so that an 8x8 digit can be seen.
    """
    from matplotlib import colormaps

    base = pixels if pixels.shape[-1] == 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    colours = colormaps["jet"](normalise_map(heat))[..., :3]  # (H, W, 3) in [0, 1]
    picture = (1 - alpha) * np.clip(base, 0, 1) + alpha * colours
    picture = np.rint(picture * 255).astype(np.uint8)
    factor = max(1, -(-MIN_DISPLAY_SIDE // min(picture.shape[:2])))
    if factor > 1:
        picture = picture.repeat(factor, axis=0).repeat(factor, axis=1)
    return picture
