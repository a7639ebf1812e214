"""Your own segmentation data: a folder of image/mask pairs.

Layout (file names pair an image with its mask by stem; PNG, TIFF, JPEG or .npy)::

    FOLDER/images/cell_001.png   FOLDER/masks/cell_001.png
    FOLDER/images/cell_002.png   FOLDER/masks/cell_002.png

or the same under FOLDER/train/, FOLDER/val/ and FOLDER/test/ to fix the splits yourself.
Without split folders, `val_size` and `test_size` (fractions or counts) are held out at
random with `seed`. A mask pixel is foreground when it is > 0. Every image must have the
same height and width; images are scaled to [0, 1] (by 255 for 8-bit files) and then
standardised per channel with the training split's statistics.

Returns a `dlcc.data.Dataset` whose y_* are masks (N, 1, H, W) float32 of 0.0 and 1.0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlcc.data.dataset import Dataset
from dlcc.data.splits import channel_mean_std, holdout_count, normalize_images
from dlcc.errors import DataError

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")
SPLITS = ("train", "val", "test")


def _read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image)
    except Exception as error:  # PIL.UnidentifiedImageError, ValueError, OSError
        raise DataError(
            f"{path} could not be read as an image ({type(error).__name__}: {error}); "
            f"expected one of {', '.join(SUFFIXES)}"
        ) from None


def _as_chw(array: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) or (H, W, C) to (C, H, W) float32 in [0, 1]."""
    scale = 255.0 if array.dtype == np.uint8 else 65535.0 if array.dtype == np.uint16 else 1.0
    array = array.astype(np.float32) / scale
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        return np.moveaxis(array[..., :3] if array.shape[-1] == 4 else array, -1, 0)
    raise DataError(f"{path}: expected a greyscale or RGB image, got shape {array.shape}")


def _read_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images_dir, masks_dir = folder / "images", folder / "masks"
    for needed in (images_dir, masks_dir):
        if not needed.is_dir():
            raise DataError(
                f"{folder}: expected the folders images/ and masks/ (pairs by file name), "
                f"but {needed.name}/ is missing"
            )
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in SUFFIXES}
    image_paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in SUFFIXES)
    if not image_paths:
        raise DataError(f"{images_dir} holds no images ({', '.join(SUFFIXES)})")
    unpaired = [p.name for p in image_paths if p.stem not in masks]
    if unpaired:
        raise DataError(
            f"{len(unpaired)} image(s) in {images_dir} have no mask of the same name in "
            f"{masks_dir}, e.g. {unpaired[0]}"
        )
    images, targets = [], []
    for path in image_paths:
        image = _as_chw(_read_array(path), path)
        mask = _read_array(masks[path.stem])
        mask = mask if mask.ndim == 2 else mask[..., 0]
        if mask.shape != image.shape[1:]:
            raise DataError(
                f"{masks[path.stem]}: mask is {mask.shape[0]}x{mask.shape[1]} but its image "
                f"is {image.shape[1]}x{image.shape[2]}; they must be the same size"
            )
        if images and image.shape != images[0].shape:
            raise DataError(
                f"{path}: shape {image.shape} differs from {image_paths[0].name}'s "
                f"{images[0].shape}; resize or crop them to one size first"
            )
        images.append(image)
        targets.append((mask > 0).astype(np.float32)[None])
    return np.stack(images), np.stack(targets)


def load_image_masks(
    folder: str | Path | None,
    *,
    val_size: int | float | None = None,
    test_size: int | float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load FOLDER's image/mask pairs, split and standardised (see the module docstring)."""
    if folder is None:
        raise DataError(
            "the image_masks dataset needs data.path: a folder with images/ and masks/ "
            "(set it in the recipe or with --set data.path=FOLDER)"
        )
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder of images/ and masks/")
    if all((root / split).is_dir() for split in SPLITS):
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
            _read_pairs(root / split) for split in SPLITS
        )
    else:
        x_all, y_all = _read_pairs(root)
        order = np.random.default_rng(seed).permutation(len(x_all))
        test = holdout_count(test_size, len(x_all), what="test_size")
        val = holdout_count(0.2 if val_size is None else val_size, len(x_all) - test)
        test_index, val_index, train_index = np.split(order, [test, test + val])
        if len(train_index) == 0:
            raise DataError(f"{root}: {len(x_all)} pairs leave none to train on; add more")
        x_train, y_train = x_all[train_index], y_all[train_index]
        x_val, y_val = x_all[val_index], y_all[val_index]
        x_test, y_test = x_all[test_index], y_all[test_index]
    mean, std = channel_mean_std(x_train)
    return Dataset(
        name="image_masks",
        classes=["background", "foreground"],
        x_train=normalize_images(x_train, mean, std),
        y_train=y_train,
        x_val=normalize_images(x_val, mean, std),
        y_val=y_val,
        x_test=normalize_images(x_test, mean, std),
        y_test=y_test,
        mean=mean,
        std=std,
        source=root,
    )
