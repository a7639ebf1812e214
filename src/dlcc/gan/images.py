"""Sample grids as PNG, and the GIF of the fixed-noise grid across training (Pillow).

Images come in the generator's range, [-1, 1], (N, C, H, W) with C = 1 or 3. Every file
is written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dlcc.atomic import atomic_write


def grid_pixels(images: torch.Tensor, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one uint8 image (rows*(H+pad)+pad, cols*(W+pad)+pad[, 3]).

    `columns` defaults to ceil(sqrt(N)); empty cells and the padding are black.
    """
    images = images.detach().float().cpu().clamp(-1, 1)
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.zeros(
        (channels, rows * (height + pad) + pad, columns * (width + pad) + pad), np.uint8
    )
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).numpy()  # (N, C, H, W)
    for index in range(count):
        top = pad + (index // columns) * (height + pad)
        left = pad + (index % columns) * (width + pad)
        canvas[:, top : top + height, left : left + width] = pixels[index]
    return canvas[0] if channels == 1 else np.moveaxis(canvas, 0, -1)


def _frame(pixels: np.ndarray, scale: int) -> Image.Image:
    image = Image.fromarray(pixels)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def save_grid(
    images: torch.Tensor, path: str | Path, columns: int | None = None, scale: int = 2
) -> Path:
    """Write images (N, C, H, W) in [-1, 1] as one PNG grid, enlarged `scale` times."""
    image = _frame(grid_pixels(images, columns), scale)
    with atomic_write(path) as handle:
        image.save(handle, format="PNG")
    return Path(path)


def save_gif(frames: list[Path], path: str | Path, milliseconds: int = 400) -> Path:
    """An animated GIF of PNG `frames` (the per-epoch grids), looping, the last held longer."""
    if not frames:
        raise ValueError("save_gif: no frames")
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(image.copy())
    durations = [milliseconds] * (len(images) - 1) + [milliseconds * 4]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
    )
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return Path(path)


__all__ = ["grid_pixels", "save_gif", "save_grid"]
