"""The course's original MNIST CSV layout (``mnist-csv``).

``images_train.csv``: one image per row, 784 comma-separated values (a 28x28 image, row by
row), either integers 0..255 or already-scaled numbers in [0, 1].
``labels_train.csv``: one integer label 0..9 per row, in the same order.
``images_test.csv`` / ``labels_test.csv``: the same for the test split. No header lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlcc.errors import DataError

MNIST_CSV_SIDE = 28
MNIST_CSV_VALUES_PER_IMAGE = MNIST_CSV_SIDE * MNIST_CSV_SIDE
MAX_PIXEL_VALUE = 255.0
DEFAULT_REMEDY = "replace it with a good copy of the course's file"


def _read_numeric_csv(path: Path, *, remedy: str) -> np.ndarray:
    """All values of a headerless numeric CSV as float64, shape (rows, columns)."""
    try:
        values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: {remedy}") from None
    except (ValueError, OSError, UnicodeDecodeError) as error:
        # loadtxt's message names the offending line and column, e.g. a header row or a
        # row with a missing value.
        raise DataError(
            f"{path} is not a table of numbers ({error}); expected comma-separated numbers "
            f"with no header: {remedy}"
        ) from error
    if not np.isfinite(values).all():
        raise DataError(f"{path} contains NaN or infinite values: {remedy}")
    return values


def read_csv_images(path: Path, *, remedy: str = DEFAULT_REMEDY) -> np.ndarray:
    """Images from one ``images_*.csv`` file.

    Returns:
        float32 array of shape (N, 1, 28, 28), values in [0, 1]. Files of integers 0..255
        are divided by 255; files whose values already lie in [0, 1] are kept as they are.
    """
    values = _read_numeric_csv(path, remedy=remedy)
    if values.shape[1] != MNIST_CSV_VALUES_PER_IMAGE:
        raise DataError(
            f"{path} has {values.shape[1]} values per row, expected "
            f"{MNIST_CSV_VALUES_PER_IMAGE} (one 28x28 image per row): {remedy}"
        )
    lowest, highest = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lowest < 0 or highest > MAX_PIXEL_VALUE:
        raise DataError(
            f"{path} holds values from {lowest:g} to {highest:g}, expected pixels in 0..255 "
            f"(or already scaled to [0, 1]): {remedy}"
        )
    # Values above 1 can only be 0..255 pixels; otherwise the file was saved already scaled.
    if highest > 1.0:
        values = values / MAX_PIXEL_VALUE
    return values.astype(np.float32).reshape(-1, 1, MNIST_CSV_SIDE, MNIST_CSV_SIDE)


def read_csv_labels(
    path: Path, *, num_classes: int = 10, remedy: str = DEFAULT_REMEDY
) -> np.ndarray:
    """Labels from one ``labels_*.csv`` file: int64 array of shape (N,), values 0..9."""
    values = _read_numeric_csv(path, remedy=remedy)
    if values.shape[1] != 1:
        raise DataError(
            f"{path} has {values.shape[1]} values per row, expected one label per row: {remedy}"
        )
    labels = values[:, 0]
    if labels.size and (
        not np.array_equal(labels, np.round(labels))
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise DataError(f"{path} must hold integer labels 0..{num_classes - 1}: {remedy}")
    return labels.astype(np.int64)


def load_csv_split(
    images_path: Path, labels_path: Path, *, remedy: str = DEFAULT_REMEDY
) -> tuple[np.ndarray, np.ndarray]:
    """One split: images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)."""
    images = read_csv_images(images_path, remedy=remedy)
    labels = read_csv_labels(labels_path, remedy=remedy)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} has {len(images):,} rows but {labels_path.name} has "
            f"{len(labels):,}; each image needs exactly one label: {remedy}"
        )
    return images, labels
