"""The embedded default dataset: scikit-learn's 8x8 handwritten digits (1,797 images).

scikit-learn ships the data as ``sklearn/datasets/data/digits.csv.gz`` (64 pixel values 0..16
and the label per row); this project never copies or commits it. ``import sklearn`` alone
takes about a second, so the file is located with ``importlib.util.find_spec`` (which does
not run sklearn's code) and read directly. If a future scikit-learn moves the file,
``sklearn.datasets.load_digits`` is used instead; a test checks both give the same arrays.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from dlcc.errors import DataError

DIGITS_COUNT = 1797
DIGITS_SIDE = 8
DIGITS_MAX_VALUE = 16.0  # each pixel counts "on" cells in a 4x4 block: 0..16


def _shipped_digits_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for package_dir in spec.submodule_search_locations:
        candidate = Path(package_dir) / "datasets" / "data" / "digits.csv.gz"
        if candidate.is_file():
            return candidate
    return None


def _from_sklearn_api() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DataError(
            "the digits dataset comes with scikit-learn, which is not installed: "
            "run `pip install scikit-learn` (or `make install`)"
        ) from error
    bunch = load_digits()
    return bunch.images, bunch.target


@lru_cache(maxsize=1)
def _load_digits_cached() -> tuple[np.ndarray, np.ndarray]:
    shipped = _shipped_digits_file()
    if shipped is not None:
        table = np.loadtxt(shipped, delimiter=",", dtype=np.float64)  # (1797, 65)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = _from_sklearn_api()
    images = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, DIGITS_SIDE, DIGITS_SIDE)
    labels = np.asarray(labels).astype(np.int64)
    if images.shape[0] != DIGITS_COUNT or labels.shape != (DIGITS_COUNT,):
        raise DataError(
            f"scikit-learn's digits data has {images.shape[0]} images, expected {DIGITS_COUNT}: "
            "reinstall scikit-learn (`pip install --force-reinstall scikit-learn`)"
        )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits, in scikit-learn's order.

    Returns:
        images: float64 array of shape (1797, 1, 8, 8), values 0..16 (not yet scaled).
        labels: int64 array of shape (1797,), values 0..9.
    Fresh writeable copies: callers may modify them.
    """
    images, labels = _load_digits_cached()
    return images.copy(), labels.copy()
