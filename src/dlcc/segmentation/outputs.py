"""Files in and out of ``dlcc segment predict`` / ``dlcc detect predict``.

In: image files (PNG, TIFF, JPEG, .npy; 8- or 16-bit grey, RGB), or folders of them.
Out: masks in the dataset's convention, overlays to look at, and point lists as CSV, each
written all-or-nothing (`dlcc.atomic`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dlcc.atomic import atomic_write, write_text_atomic
from dlcc.errors import DataError
from dlcc.segmentation.predictor import PredictError

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")
TINT = (255, 64, 32)  # the overlay's colour for the highlighted pixels (red-orange)
TINT_ALPHA = 0.45
# One colour per class after the first (background), for multi-class overlays.
CLASS_COLOURS = ((255, 64, 32), (32, 160, 255), (64, 220, 64), (255, 200, 0), (200, 64, 255))


def collect_inputs(arguments: list[str]) -> list[Path]:
    """Files and folders (every image inside, sorted, hidden files skipped) as image paths.

    Raises PredictError for a missing path, an empty folder, a file that is not an image by
    its suffix, or two inputs that would write the same output name.
    """
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if child.is_file()
                and child.suffix.lower() in SUFFIXES
                and not child.name.startswith(".")
            )
            if not found:
                raise PredictError(
                    f"{path} is a folder with no images in it (expected {', '.join(SUFFIXES)}); "
                    "pass a folder of images or the image files themselves"
                )
            paths += found
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise PredictError(
                    f"{path} is not an image file (expected {', '.join(SUFFIXES)}, received "
                    f"{path.suffix or 'no suffix'}); pass image files or folders of them"
                )
            paths.append(path)
        else:
            raise PredictError(f"{path} does not exist: pass image files or folders of them")
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem] != path:
            raise PredictError(
                f"{seen[path.stem]} and {path} would both write {path.stem}.png; "
                "rename one, or predict them into different --out folders"
            )
        seen[path.stem] = path
    return list(dict.fromkeys(paths))


def read_image(path: Path) -> np.ndarray:
    """An image file's pixels: (H, W) grey or (H, W, C), uint8, uint16 or float32.

    16-bit TIFF/PNG (PIL modes I;16 and I) come back as uint16, palette and 1-bit images as
    8-bit grey or RGB. Raises PredictError for a file that is not a readable image.
    """
    from dlcc.data.image_masks import read_pixels

    try:
        array, _ = read_pixels(path, mask=False)  # the training loader's reader: one set of rules
    except DataError as error:
        raise PredictError(str(error)) from None
    if array.dtype.kind in "iu" and array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.uint16)  # PIL's mode I for 16-bit files, range checked there
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.ndim not in (2, 3) or 0 in array.shape[:2]:
        raise PredictError(
            f"{path}: expected a 2-D image (H, W) or (H, W, C), received shape {array.shape}"
        )
    return array


def display_grey(pixels: np.ndarray) -> np.ndarray:
    """(H, W) / (H, W, C) pixels -> (H, W) uint8 for display, stretched 0.5-99.5 percentile."""
    grey = pixels[..., :3].mean(axis=-1, dtype=np.float32) if pixels.ndim == 3 else pixels
    step = max(1, int(np.sqrt(grey.size / 1_000_000)))  # percentiles of ~1M pixels suffice
    low, high = (float(v) for v in np.percentile(grey[::step, ::step], (0.5, 99.5)))
    if high <= low:
        high = low + 1.0
    scaled = grey.astype(np.float32)  # (H, W), a copy, worked on in place
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def binary_mask(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """(1, H, W) P(class 1) -> (H, W) uint8: 255 where P > threshold (class 1), else 0."""
    mask = np.zeros(probabilities.shape[1:], dtype=np.uint8)
    mask[probabilities[0] > threshold] = 255
    return mask


def label_map(probabilities: np.ndarray) -> np.ndarray:
    """(K, H, W) class probabilities, K >= 2 -> (H, W) uint8 argmax class index."""
    return np.argmax(probabilities, axis=0).astype(np.uint8)


def segmentation_overlay(pixels: np.ndarray, mask: np.ndarray, binary: bool) -> np.ndarray:
    """(H, W, 3) uint8: the image in grey, predicted pixels tinted.

    Binary masks tint class 0 (0 in the mask: membrane in ISBI 2012); label maps tint every
    class but 0 (background), one colour per class. Built channel by channel in uint8, so a
    large image costs a few bytes a pixel.
    """
    grey = display_grey(pixels)  # (H, W) uint8
    picture = np.repeat(grey[..., None], 3, axis=-1)  # (H, W, 3) uint8
    if binary:
        layers = [(mask == 0, TINT)]
    else:
        layers = [
            (mask == label, CLASS_COLOURS[(int(label) - 1) % len(CLASS_COLOURS)])
            for label in np.unique(mask)
            if label != 0
        ]
    for where, colour in layers:
        tinted = grey[where].astype(np.float32) * (1 - TINT_ALPHA)  # (N,) the selected pixels
        for channel in range(3):
            values = tinted + TINT_ALPHA * colour[channel]
            picture[..., channel][where] = np.rint(values).astype(np.uint8)
    return picture


def points_overlay(pixels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the image in grey with a small ring around each (row, col) point."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(display_grey(pixels)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    radius = max(2, min(picture.size) // 128)
    for row, column in np.asarray(points).reshape(-1, 2):
        box = (column - radius, row - radius, column + radius, row + radius)
        draw.ellipse([float(value) for value in box], outline=TINT, width=1)
    return np.asarray(picture)


def points_csv(points: np.ndarray, scores: np.ndarray) -> str:
    """Header ``x,y,score``: x the column, y the row (pixels), one line per point.

    Whole-pixel points are written as integers, sub-pixel ones with two decimals.
    """

    def coordinate(value) -> str:
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:.2f}"

    lines = ["x,y,score"]
    for (row, column), score in zip(np.asarray(points).reshape(-1, 2), scores, strict=True):
        lines.append(f"{coordinate(column)},{coordinate(row)},{float(score):.6g}")
    return "\n".join(lines) + "\n"


def write_png(path: Path, array: np.ndarray) -> None:
    """(H, W) or (H, W, 3) uint8 as a PNG, all-or-nothing."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def check_output_folder(out: str | Path) -> Path:
    """--out as a Path; PredictError if it (or its overlays/) exists and is not a folder."""
    folder = Path(out)
    for needed in (folder, folder / "overlays"):
        if needed.exists() and not needed.is_dir():
            raise PredictError(
                f"--out {needed} is an existing file, not a folder; pass a folder to write "
                "the predictions in (it is created if missing)"
            )
    for parent in folder.parents:
        if parent.exists() and not parent.is_dir():
            raise PredictError(f"--out {folder}: {parent} is a file, not a folder")
    return folder
