"""`load_dataset`: any registered dataset as NumPy arrays, split and normalised.

Default split sizes (validation carved from the training data, seeded by `seed`, stratified
by class; the test split is the publisher's, or fixed for digits):

    dataset        train    val                      test
    digits         1,257    180                      360 (20% of 1,797, fixed seed)
    mnist          55,000   5,000                    10,000 (t10k files)
    fashion-mnist  55,000   5,000                    10,000 (t10k files)
    cifar10        90%      10% of the train present  test_batch (10,000 when complete)
    mnist-csv      90%      10% of images_train.csv   images_test.csv
    isbi2012_em    20       5                        0 (the published test images are unlabelled)

With the shared CIFAR-10 subset (4,000 + 1,000 images) that gives 3,600 / 400 / 1,000.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlcc.data.cifar import load_cifar_folder
from dlcc.data.csv_format import load_csv_split
from dlcc.data.digits import DIGITS_MAX_VALUE, load_digits_arrays
from dlcc.data.idx import load_idx_split
from dlcc.data.paths import find_dataset_folder, locate_file, resolve_data_dir
from dlcc.data.registry import DatasetSpec, get_spec
from dlcc.data.splits import channel_mean_std, normalize_images, split_holdout
from dlcc.data.status import damaged_file_remedy, missing_dataset_error
from dlcc.errors import DataError

# digits has no official test split: hold out 20% with a fixed seed, independent of `seed`,
# so that every run, whatever its seed, is evaluated on the same 360 images.
DIGITS_TEST_SIZE = 360
DIGITS_TEST_SEED = 20240101
UINT8_MAX = 255.0


@dataclass(repr=False)
class Dataset:
    """A dataset split three ways, as NumPy arrays.

    Attributes:
        name: registry name, e.g. ``mnist``.
        classes: class names, index = label.
        x_train, x_val, x_test: float32 arrays of shape (N, C, H, W) (NCHW, like PyTorch;
            C=1 for greyscale). Pixels are first scaled to [0, 1]; when loaded with
            ``normalize=True`` they are then standardised with `mean` and `std`.
        y_train, y_val, y_test: int64 arrays of shape (N,), values 0..len(classes)-1; for
            segmentation (isbi2012_em, image_masks) float32 (N, 1, H, W) class indices.
        mean, std: float32 arrays of shape (C,): per-channel statistics of the [0, 1]-scaled
            training split (after the validation split was removed), never of val or test.
        source: the folder the files were read from (None for the embedded digits).
    """

    name: str
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    source: Path | None = field(default=None)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        # The default dataclass repr would print every pixel.
        channels, height, width = self.image_shape
        return (
            f"Dataset({self.name!r}: train {len(self.y_train):,}, val {len(self.y_val):,}, "
            f"test {len(self.y_test):,} images of {channels}x{height}x{width}, "
            f"{self.num_classes} classes)"
        )


@dataclass
class _RawSplits:
    """Training and test data as read from disk, before the validation split.

    `scale` is what divides the pixel values into [0, 1] (255 for uint8, 16 for digits).
    """

    x_train: np.ndarray  # (N_train, C, H, W)
    y_train: np.ndarray  # (N_train,)
    x_test: np.ndarray  # (N_test, C, H, W)
    y_test: np.ndarray  # (N_test,)
    classes: list[str]
    scale: float
    source: Path | None


def _dataset_folder(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> Path:
    folder = find_dataset_folder(spec, resolve_data_dir(data_dir))
    if folder is None:
        raise missing_dataset_error(spec, data_dir)
    return folder


def _load_digits_raw(spec: DatasetSpec) -> _RawSplits:
    images, labels = load_digits_arrays()  # (1797, 1, 8, 8) in 0..16, (1797,)
    x_train, y_train, x_test, y_test = split_holdout(
        images, labels, DIGITS_TEST_SIZE, seed=DIGITS_TEST_SEED, what="digits test size"
    )
    return _RawSplits(x_train, y_train, x_test, y_test, list(spec.classes), DIGITS_MAX_VALUE, None)


def _load_idx_raw(spec: DatasetSpec, folder: Path) -> _RawSplits:
    by_name = {file.filename: file for file in spec.files}
    _, height, width = spec.image_shape

    def split(images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
        images_file, labels_file = by_name[images_name], by_name[labels_name]
        images_path = locate_file(folder, images_file) or folder / images_name
        labels_path = locate_file(folder, labels_file) or folder / labels_name
        return load_idx_split(
            images_path,
            labels_path,
            image_size=(height, width),
            num_classes=len(spec.classes),
            images_sha256=images_file.sha256,
            labels_sha256=labels_file.sha256,
            remedy=damaged_file_remedy(spec),
        )

    x_train, y_train = split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    x_test, y_test = split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return _RawSplits(x_train, y_train, x_test, y_test, list(spec.classes), UINT8_MAX, folder)


def _load_cifar_raw(spec: DatasetSpec, folder: Path) -> _RawSplits:
    remedy = damaged_file_remedy(spec)
    x_train, y_train, x_test, y_test, classes = load_cifar_folder(folder, remedy=remedy)
    return _RawSplits(x_train, y_train, x_test, y_test, classes, UINT8_MAX, folder)


def _load_csv_raw(spec: DatasetSpec, folder: Path) -> _RawSplits:
    remedy = damaged_file_remedy(spec)
    x_train, y_train = load_csv_split(
        folder / "images_train.csv", folder / "labels_train.csv", remedy=remedy
    )
    x_test, y_test = load_csv_split(
        folder / "images_test.csv", folder / "labels_test.csv", remedy=remedy
    )
    # read_csv_images already scaled to [0, 1].
    return _RawSplits(x_train, y_train, x_test, y_test, list(spec.classes), 1.0, folder)


def _load_raw(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> _RawSplits:
    if spec.file_format == "text":
        raise DataError(
            f"dataset {spec.name} is a text corpus, not images: read it with "
            "dlcc.data.text.load_text, or train on it with `dlcc numpy train --model char_lstm`"
        )
    if spec.file_format == "embedded":
        return _load_digits_raw(spec)
    folder = _dataset_folder(spec, data_dir)
    if spec.file_format == "idx":
        return _load_idx_raw(spec, folder)
    if spec.file_format == "cifar-pickle":
        return _load_cifar_raw(spec, folder)
    if spec.file_format == "csv":
        return _load_csv_raw(spec, folder)
    raise AssertionError(f"registry entry {spec.name} has unknown format {spec.file_format}")


def _load_image_masks_spec(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str] | None,
    val_size: int | float | None,
    seed: int,
    normalize: bool,
) -> Dataset:
    """A registered image/mask dataset (isbi2012_em): train/image + train/label pairs; the
    test split is empty (the publisher's test images are unlabelled)."""
    from dlcc.data.image_masks import load_image_masks  # it imports Dataset from here

    folder = _dataset_folder(spec, data_dir)
    return load_image_masks(
        None,
        images=folder / "train" / "image",
        masks=folder / "train" / "label",
        val_size=spec.default_val_size if val_size is None else val_size,
        test_size=0,
        seed=seed,
        class_names=list(spec.classes),
        name=spec.name,
        normalize=normalize,
    )


def _to_unit_float(images: np.ndarray, scale: float) -> np.ndarray:
    """float32 copy of `images` divided by `scale`, so pixels lie in [0, 1]."""
    scaled = images.astype(np.float32)  # always a copy: callers may modify it in place
    if scale != 1.0:
        scaled /= np.float32(scale)
    return scaled


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    val_size: int | float | None = None,
    seed: int = 0,
    normalize: bool = True,
) -> Dataset:
    """Load a registered dataset, with a seeded validation split carved from its training data.

    Args:
        name: ``digits`` (embedded, no download), ``mnist``, ``fashion-mnist``, ``cifar10``,
            ``mnist-csv`` or ``isbi2012_em`` (segmentation); see ``dlcc data list``.
        data_dir: where datasets live; default $DLCC_DATA_DIR, else ~/.cache/dlcc.
        val_size: validation images taken from the training data: an int is a count, a float
            in [0, 1) a fraction; None uses the dataset's default (see the module docstring).
        seed: seeds the validation split; the same seed gives the same split.
        normalize: standardise every split with the training split's per-channel mean and
            std; False leaves pixels in [0, 1] (mean and std are still returned).

    Returns:
        A `Dataset`: x float32 (N, C, H, W), y int64 (N,), mean/std float32 (C,).

    Raises:
        DataError: the dataset is missing (the message says how to get it), or a file is
            truncated, corrupt or fails its checksum (the message names it).
    """
    spec = get_spec(name)
    if spec.file_format == "image-masks":
        return _load_image_masks_spec(spec, data_dir, val_size, seed, normalize)
    raw = _load_raw(spec, data_dir)
    if val_size is None:
        val_size = spec.default_val_size
    x_train, y_train, x_val, y_val = split_holdout(raw.x_train, raw.y_train, val_size, seed=seed)
    x_train = _to_unit_float(x_train, raw.scale)
    x_val = _to_unit_float(x_val, raw.scale)
    x_test = _to_unit_float(raw.x_test, raw.scale)
    mean, std = channel_mean_std(x_train)  # training split only, after the val split
    if normalize:
        for images in (x_train, x_val, x_test):
            normalize_images(images, mean, std, in_place=True)
    return Dataset(
        name=spec.name,
        classes=list(raw.classes),
        x_train=x_train,
        y_train=y_train.astype(np.int64, copy=False),
        x_val=x_val,
        y_val=y_val.astype(np.int64, copy=False),
        x_test=x_test,
        y_test=raw.y_test.astype(np.int64, copy=False),
        mean=mean,
        std=std,
        source=raw.source,
    )
