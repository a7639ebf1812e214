"""Your own segmentation data: image/mask pairs in folders, paired by file stem.

Layouts (PNG, TIFF, JPEG or .npy; ``cell_001.png`` pairs with ``cell_001.tif`` as well)::

    FOLDER/images/cell_001.png   FOLDER/masks/cell_001.png     (ours)
    FOLDER/image/0.png           FOLDER/label/0.png            (the ISBI 2012 layout)

or either of them under FOLDER/train/ (and FOLDER/val/, FOLDER/test/) to fix the splits
yourself, or two folders named outright: ``load_image_masks(None, images=A, masks=B)``.

Splits. With split folders, train/ is the training split and val/ and test/ are used
where they hold pairs; a split whose folder is absent or holds no pairs (ISBI's test/ has
unlabelled images only) is held out of train/ as below. Without split folders, `test_size`
and then `val_size` (fractions or counts) are held out at random with `seed`. The files are
sorted by name first, so the same seed gives the same split whatever order the file
system lists them in.

Images: greyscale or RGB (an alpha channel is dropped), 8- or 16-bit. Pixels are scaled to
[0, 1] by the largest value of their type (255 for 8-bit, 65535 for 16-bit; float .npy and
32-bit float TIFF are kept as they are), then standardised per channel with the training
split's statistics. Every image must have the same height, width and channel count.

Masks: one value per pixel (an RGB mask is accepted when its channels are equal). The
values over *all* masks decide what they mean:
- all of them in {0, 255}: a binary mask, 0 -> class 0 and 255 -> class 1;
- otherwise they are class indices 0..K-1 already, each below 64.
K = the largest label + 1 (at least 2), or len(class_names) when given. Default class
names: ["background", "foreground"] for two classes, else ["class 0", "class 1", ...].

Returns a `dlcc.data.Dataset` whose y_* are float32 (N, 1, H, W) holding the class index
(0.0 and 1.0 for binary masks) and whose x_* are float32 (N, C, H, W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlcc.data.dataset import Dataset
from dlcc.data.splits import channel_mean_std, holdout_count, normalize_images
from dlcc.errors import DataError

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")
SPLITS = ("train", "val", "test")
LAYOUTS = (("images", "masks"), ("image", "label"))  # (image folder, mask folder)
BINARY_VALUES = {0, 255}
MAX_CLASSES = 64
BINARY_CLASS_NAMES = ("background", "foreground")
CONVERT_HINT = (
    "save it as an 8- or 16-bit greyscale or 8-bit RGB PNG/TIFF, or as a NumPy .npy array"
)


# ---- one file ------------------------------------------------------------------------------


def read_pixels(path: Path, *, mask: bool) -> tuple[np.ndarray, float]:
    """The pixels of `path` as (H, W) or (H, W, C), and the value that means "full scale".

    Images in palette or bilevel modes are converted to RGB or grey; a mask keeps its raw
    values (a palette mask's values are its class indices).
    """
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
            return array, dtype_scale(array.dtype)
        from PIL import Image

        with Image.open(path) as image:
            mode, rawmode = image.mode, _raw_mode(image)
            if mode in ("RGB", "RGBA") and ";16" in rawmode:
                raise _SixteenBitColour(rawmode)
            if not mask and mode in ("P", "PA"):
                image = image.convert("RGBA" if mode == "PA" else "RGB")
            elif mode == "1":
                image = image.convert("L")  # 0/255, for images and masks alike
            elif mode == "LA":
                image = image.convert("L")
            array = np.asarray(image)
    except _SixteenBitColour as error:
        raise DataError(
            f"{path}: a 16-bit colour image ({error}), which Pillow would cut to 8 bits; "
            "save it as a NumPy .npy array of shape (H, W, 3) and dtype uint16, or save each "
            "channel as a 16-bit greyscale image"
        ) from None
    except Exception as error:  # PIL.UnidentifiedImageError, ValueError, OSError, ...
        raise DataError(
            f"{path} could not be read as an image ({type(error).__name__}: {error}); "
            f"expected a PNG, TIFF or JPEG image or a .npy array: replace the file, or "
            f"{CONVERT_HINT}"
        ) from None
    if mode == "I":  # 32-bit integers: PIL's mode for some 16-bit files
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise DataError(
                f"{path}: a 32-bit integer image with values outside 0..65535 "
                f"({array.min()}..{array.max()}); expected 8- or 16-bit pixels: {CONVERT_HINT}"
            )
        return array, 65535.0
    if mode not in ("L", "RGB", "RGBA", "P", "1", "LA", "F") and not mode.startswith("I;16"):
        raise DataError(f"{path}: image mode {mode!r} is not supported; {CONVERT_HINT}")
    return array, dtype_scale(array.dtype)


class _SixteenBitColour(Exception):
    """Raised inside `read_pixels` for a 48/64-bit RGB(A) file (Pillow keeps 8 bits)."""


def _raw_mode(image) -> str:
    """The pixel layout as stored in the file (``RGB;16B`` for a 16-bit RGB PNG), or ""."""
    tile = getattr(image, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3] if isinstance(tile[0], tuple) else getattr(tile[0], "args", "")
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def dtype_scale(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0  # float (already scaled) and bool


def _as_chw(array: np.ndarray, scale: float, path: Path) -> np.ndarray:
    """(H, W) or (H, W, C) to (C, H, W) float32 in [0, 1] (divided by `scale`)."""
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]  # drop alpha
    if array.ndim == 3 and array.shape[-1] == 2:
        array = array[..., :1]  # grey + alpha
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise DataError(
            f"{path}: expected a greyscale or RGB image (H, W) or (H, W, 3), got shape "
            f"{array.shape}; {CONVERT_HINT}"
        )
    return np.moveaxis(array.astype(np.float32) / np.float32(scale), -1, 0)


def _as_label_plane(array: np.ndarray, path: Path) -> np.ndarray:
    """A mask as (H, W) int64 values; an RGB(A) mask must have equal colour channels."""
    if array.ndim == 3:
        colours = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if not (colours == colours[..., :1]).all():
            raise DataError(
                f"{path}: an RGB mask whose channels differ; expected one class index (or "
                "0/255) per pixel. Save the mask as a greyscale image of class indices"
            )
        array = colours[..., 0]
    if array.ndim != 2:
        raise DataError(f"{path}: expected a mask of shape (H, W), got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise DataError(
                f"{path}: mask values must be whole numbers (class indices or 0/255), "
                f"found fractions such as {array[array != np.round(array)].flat[0]!r}"
            )
    return array.astype(np.int64)


# ---- folders and pairs ---------------------------------------------------------------------


def _image_files(folder: Path) -> list[Path]:
    """The image files of `folder`, sorted by name (not in file-system order)."""
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
        key=lambda p: p.name,
    )
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise DataError(
                f"{folder}: {stems[path.stem].name} and {path.name} have the same stem, so "
                "it is not clear which to pair; keep one of them"
            )
        stems[path.stem] = path
    return files


def _find_layout(folder: Path) -> tuple[Path, Path] | None:
    """(images folder, masks folder) of `folder` in one of the LAYOUTS, or None."""
    found = [(folder / i, folder / m) for i, m in LAYOUTS if (folder / i).is_dir()]
    with_masks = [pair for pair in found if pair[1].is_dir()]
    if len(with_masks) > 1:
        raise DataError(f"{folder} holds both images/+masks/ and image/+label/; keep one layout")
    return with_masks[0] if with_masks else None


def _layout_or_error(folder: Path) -> tuple[Path, Path]:
    pair = _find_layout(folder)
    if pair is None:
        present = sorted(p.name + "/" for p in folder.iterdir() if p.is_dir()) or ["none"]
        raise DataError(
            f"{folder}: expected the folders images/ and masks/ (or image/ and label/, "
            f"paired by file name), but found sub-folders {', '.join(present)}: put each "
            "image in images/ and its mask, with the same name, in masks/"
        )
    return pair


def _read_pairs(images_dir: Path, masks_dir: Path) -> tuple[list, list, list]:
    """Images (C, H, W) float32, masks (H, W) int64 and the image paths, in name order."""
    for needed, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not needed.is_dir():
            raise DataError(f"the {what} folder {needed} does not exist or is not a folder")
    masks = {p.stem: p for p in _image_files(masks_dir)}
    image_paths = _image_files(images_dir)
    if not image_paths:
        raise DataError(
            f"{images_dir} holds no images: expected files ending in {', '.join(SUFFIXES)}"
        )
    unpaired = [p.name for p in image_paths if p.stem not in masks]
    if unpaired:
        raise DataError(
            f"{len(unpaired)} image(s) in {images_dir} have no mask of the same name in "
            f"{masks_dir}, e.g. {unpaired[0]}: add the masks or remove those images"
        )
    images, labels = [], []
    for path in image_paths:
        image = _as_chw(*read_pixels(path, mask=False), path)  # (C, H, W)
        mask_path = masks[path.stem]
        mask = _as_label_plane(read_pixels(mask_path, mask=True)[0], mask_path)  # (H, W)
        if mask.shape != image.shape[1:]:
            raise DataError(
                f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but its image {path.name} "
                f"is {image.shape[1]}x{image.shape[2]}; they must be the same size"
            )
        if images and image.shape != images[0].shape:
            raise DataError(
                f"{path}: (channels, height, width) {image.shape} differs from "
                f"{image_paths[0].name}'s {images[0].shape}; every image must have the same "
                "size and channels: resize or crop them to one size first"
            )
        images.append(image)
        labels.append(mask)
    return images, labels, image_paths


def _class_indices(
    splits: list[list[np.ndarray]], class_names: list[str] | None, source: str
) -> tuple[list[np.ndarray], list[str]]:
    """Masks (H, W) int64 of every split to float32 (N, 1, H, W) class indices, and names."""
    present: set[int] = set()
    for masks in splits:
        for mask in masks:
            present.update(np.unique(mask).tolist())
    binary = present <= BINARY_VALUES
    if binary:
        largest = 1
    else:
        largest = max(present)
        if min(present) < 0 or largest >= MAX_CLASSES:
            shown = sorted(present)
            shown_text = ", ".join(map(str, shown[:8])) + (", ..." if len(shown) > 8 else "")
            raise DataError(
                f"{source}: the masks hold the values {shown_text}; expected either only 0 "
                f"and 255 (a binary mask) or class indices 0..{MAX_CLASSES - 1}. Save each "
                "mask with one class index per pixel, as PNG (JPEG blurs the values)"
            )
    count = max(largest + 1, 2)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) < count:
            raise DataError(
                f"{source}: {len(class_names)} class names {class_names} for masks with "
                f"labels up to {largest}; expected at least {count} names"
            )
    elif count == 2:
        class_names = list(BINARY_CLASS_NAMES)
    else:
        class_names = [f"class {index}" for index in range(count)]

    def convert(masks: list[np.ndarray]) -> np.ndarray:
        if not masks:
            return np.zeros((0, 1, 1, 1), dtype=np.float32)
        stacked = np.stack(masks)[:, None]  # (N, 1, H, W)
        if binary:
            stacked = stacked // 255
        return stacked.astype(np.float32)

    return [convert(masks) for masks in splits], class_names


# ---- the loader ----------------------------------------------------------------------------


def load_image_masks(
    folder: str | Path | None,
    *,
    images: str | Path | None = None,
    masks: str | Path | None = None,
    val_size: int | float | None = None,
    test_size: int | float = 0.2,
    seed: int = 0,
    class_names: list[str] | None = None,
    name: str = "image_masks",
    normalize: bool = True,
) -> Dataset:
    """Load image/mask pairs, split and standardised (see the module docstring).

    Args:
        folder: a folder in one of the layouts, or None with `images` and `masks`.
        images, masks: two folders named outright, paired by file stem.
        val_size, test_size: held out where no split folder fixes them: an int is a count,
            a float a fraction (val_size=None means 0.2); test first, then val of the rest.
        seed: seeds the hold-out; the same seed gives the same split.
        class_names: names of the classes, index = label (default: see the docstring).
        name: the Dataset's name (a registry entry passes its own).
        normalize: standardise every split with the training split's per-channel mean and
            std; False leaves pixels in [0, 1] (mean and std are still returned).

    Returns:
        A Dataset: x float32 (N, C, H, W) standardised, y float32 (N, 1, H, W) class
        indices, mean/std float32 (C,), classes the class names.

    Raises:
        DataError: a missing folder, file or mask, an unreadable file, a size mismatch, or
            mask values that are neither 0/255 nor class indices; the message says which.
    """
    if folder is None and images is None and masks is None:
        raise DataError(
            "the image_masks dataset needs data.path: a folder with images/ and masks/ "
            "(set it in the recipe or with --set data.path=FOLDER)"
        )
    if folder is not None and (images is not None or masks is not None):
        raise DataError("give either a folder or images= and masks= folders, not both")
    fixed: dict[str, tuple[list, list]] = {}
    if folder is None:
        if images is None or masks is None:
            raise DataError("images= and masks= go together: give both folders")
        root = Path(images).expanduser()
        fixed["all"] = _read_pairs(root, Path(masks).expanduser())[:2]
    else:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise DataError(
                f"data.path {root} does not exist or is not a folder: expected a folder "
                "holding images/ and masks/ (or image/ and label/)"
            )
        train_dir = root / "train"
        if train_dir.is_dir() and _find_layout(train_dir) is not None:
            for split in SPLITS:
                pair = _find_layout(root / split) if (root / split).is_dir() else None
                if pair is not None:
                    fixed[split] = _read_pairs(*pair)[:2]
        else:
            fixed["all"] = _read_pairs(*_layout_or_error(root))[:2]
    x_train, y_train, x_val, y_val, x_test, y_test = _split(fixed, val_size, test_size, seed, root)
    (y_train, y_val, y_test), classes = _class_indices(
        [y_train, y_val, y_test], class_names, str(root)
    )
    x_train, x_val, x_test = (_stack(x, x_train) for x in (x_train, x_val, x_test))
    y_val, y_test = (_empty_like_masks(y, y_train) for y in (y_val, y_test))
    mean, std = channel_mean_std(x_train)
    if normalize:
        x_train, x_val, x_test = (normalize_images(x, mean, std) for x in (x_train, x_val, x_test))
    return Dataset(
        name=name,
        classes=classes,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        mean=mean,
        std=std,
        source=root,
    )


def _split(fixed: dict, val_size, test_size, seed: int, root: Path) -> tuple[list, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test) as lists, holding out what no split
    folder fixed: test first (test_size), then val (val_size) of what remains."""
    x_pool, y_pool = fixed.get("all", fixed.get("train"))
    total = len(x_pool)
    order = np.random.default_rng(seed).permutation(total)
    test = 0 if "test" in fixed else holdout_count(test_size, total, what="test_size")
    remaining = total - test
    val = 0 if "val" in fixed else holdout_count(0.2 if val_size is None else val_size, remaining)
    test_index, val_index, train_index = np.split(order, [test, test + val])
    if len(train_index) == 0:
        raise DataError(f"{root}: {total} pairs leave none to train on; add more")

    def pick(index):
        return [x_pool[i] for i in index], [y_pool[i] for i in index]

    x_train, y_train = pick(train_index)
    x_val, y_val = fixed.get("val") or pick(val_index)
    x_test, y_test = fixed.get("test") or pick(test_index)
    for split, split_images in (("val", x_val), ("test", x_test)):
        if split_images and split_images[0].shape != x_train[0].shape:
            raise DataError(
                f"{root / split}: images of (channels, height, width) "
                f"{split_images[0].shape}, but the training images are {x_train[0].shape}; "
                "every split must have one size"
            )
    return x_train, y_train, x_val, y_val, x_test, y_test


def _stack(images: list[np.ndarray], train: list[np.ndarray]) -> np.ndarray:
    """A list of (C, H, W) to (N, C, H, W); an empty split is (0, C, H, W) of train's size."""
    if images:
        return np.stack(images)
    return np.zeros((0, *train[0].shape), dtype=np.float32)


def _empty_like_masks(masks: np.ndarray, train: np.ndarray) -> np.ndarray:
    if len(masks):
        return masks
    return np.zeros((0, *train.shape[1:]), dtype=np.float32)  # (0, 1, H, W)
