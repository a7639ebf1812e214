"""Data tests: check the data before trusting any figure computed on it.

A model trained on broken data fails silently: it trains, and the figures are wrong. The
cheapest place to catch that is the data itself, before training:

- **schema**: the shapes, dtypes, value range and split sizes the code after it assumes;
- **label range**: every label is a valid class index, and every class is present in each
  split (a class missing from the test split makes its accuracy undefined);
- **no train/test overlap**: an example in both splits is memorised, not generalised, and
  inflates the test figure. Indices cannot show it (a file copied twice has two indices),
  so we compare content: the sha256 of each example's bytes.

The counts of exact duplicates below were measured on the copies under $DLCC_DATA_DIR
(2026-12-02): none of MNIST, Fashion-MNIST, the CIFAR-10 subset, the digits or the ISBI EM
images has an exact copy across (or within) its splits. If a dataset had some, the
test would state the known count instead of hiding it: a change in the count is a change
in the data. Near-duplicates (a shifted or re-encoded image) need other tools, e.g. a
perceptual hash. Adjacent EM slices are such near-duplicates: the ISBI validation images
have neighbouring slices in the training split, so their Dice is somewhat optimistic, and
no exact hash can show it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from ml_helpers import content_hashes, overlap, require_dataset

from dlcc.data.dataset import load_dataset

# name: (image shape, classes, train + val examples, test examples), as documented.
IMAGE_DATASETS = {
    "digits": ((1, 8, 8), 10, 1437, 360),
    "mnist": ((1, 28, 28), 10, 60000, 10000),
    "fashion-mnist": ((1, 28, 28), 10, 60000, 10000),
    "cifar10": ((3, 32, 32), 10, 4000, 1000),  # the subset under shared/datasets
}
GENERATED = {"digits"}  # embedded in the package: always tested
# Exact duplicates, measured (see the module docstring): (train/val, train+val/test).
KNOWN_DUPLICATES = {name: (0, 0) for name in IMAGE_DATASETS}


@cache
def raw(name: str):
    """The dataset in [0, 1] (not standardised), loaded once for all the tests here."""
    if name not in GENERATED:
        require_dataset(name)
    return load_dataset(name, normalize=False)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_schema(name):
    """Shapes, dtypes, sizes and value range are what the trainers assume."""
    shape, classes, train_total, test_total = IMAGE_DATASETS[name]
    data = raw(name)
    assert len(data.classes) == classes
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == np.float32 and x.shape[1:] == shape, (split, x.dtype, x.shape)
        assert y.dtype == np.int64 and y.shape == (len(x),), (split, y.dtype, y.shape)
        assert np.isfinite(x).all()
        assert x.min() >= 0.0 and x.max() <= 1.0, "pixels scaled to [0, 1]"
    assert len(data.x_train) + len(data.x_val) == train_total
    assert len(data.x_test) == test_total
    assert data.x_train.max() == 1.0 and data.x_train.min() == 0.0, "the full range is used"


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_label_range_and_every_class_in_every_split(name):
    """Labels are class indices 0..K-1, and each split has every class, none very rare."""
    data = raw(name)
    classes = len(data.classes)
    for split in ("train", "val", "test"):
        y = getattr(data, f"y_{split}")
        assert y.min() >= 0 and y.max() < classes, (split, y.min(), y.max())
        counts = np.bincount(y, minlength=classes)
        assert (counts > 0).all(), f"{split}: classes {np.flatnonzero(counts == 0)} absent"
        # None under a third of an even share: a far rarer class signals a broken split.
        assert counts.min() > len(y) / classes / 3, (split, counts)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_no_example_is_shared_between_splits(name):
    """No training example has an exact copy in the validation or the test split."""
    data = raw(name)
    train, val, test = (content_hashes(getattr(data, f"x_{s}")) for s in ("train", "val", "test"))
    found = (overlap(train, val), overlap(train + val, test))
    assert found == KNOWN_DUPLICATES[name], (
        f"{name}: {found[0]} validation and {found[1]} test examples have an exact copy in "
        f"the training data (known: {KNOWN_DUPLICATES[name]})"
    )
    within = len(train) + len(val) - len(set(train + val))
    assert within == 0, f"{name}: {within} exact duplicates inside the training data"


def test_the_content_hash_finds_a_copied_example():
    """The overlap test can fail: an example copied into the test split is found."""
    data = raw("digits")
    leaked = np.concatenate([data.x_test, data.x_train[[3, 7]].copy()])
    assert overlap(content_hashes(data.x_train), content_hashes(leaked)) == 2


def test_standardisation_uses_the_training_split_only():
    """Mean and std come from the training split: the test split must not inform training."""
    data = load_dataset("digits")  # standardised
    unit = raw("digits")
    x_train = unit.x_train.astype(np.float64)
    np.testing.assert_allclose(data.mean, x_train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(data.std, x_train.std(axis=(0, 2, 3)), rtol=1e-4)
    everything = np.concatenate([unit.x_train, unit.x_val, unit.x_test]).astype(np.float64)
    assert abs(everything.mean() - data.mean[0]) > 1e-4, "would also pass with leaked stats"


def test_the_validation_split_is_a_function_of_the_seed():
    """The same seed gives the same split, another seed another one: runs can be repeated."""
    first = load_dataset("digits", seed=0, normalize=False)
    again = load_dataset("digits", seed=0, normalize=False)
    other = load_dataset("digits", seed=1, normalize=False)  # unscaled: no per-split stats
    assert np.array_equal(first.x_val, again.x_val) and np.array_equal(first.y_val, again.y_val)
    assert content_hashes(first.x_val) != content_hashes(other.x_val)
    assert sorted(content_hashes(np.concatenate([first.x_train, first.x_val]))) == sorted(
        content_hashes(np.concatenate([other.x_train, other.x_val]))
    ), "a split only moves examples between train and val"


# ---- the ISBI 2012 EM images (segmentation) ------------------------------------------


def test_isbi_images_and_masks():
    """512x512 grey images, binary masks aligned to them, no test image in the training set.

    The published test images are unlabelled, so the test split is empty and the 25
    labelled images give 20 training and 5 validation ones.
    """
    from PIL import Image

    folder = require_dataset("isbi2012_em")
    data = load_dataset("isbi2012_em", normalize=False)
    assert data.x_train.shape == (20, 1, 512, 512) and data.x_val.shape == (5, 1, 512, 512)
    assert len(data.x_test) == 0
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        assert y.shape == x.shape, "a mask per image, pixel for pixel"
        assert set(np.unique(y).tolist()) == {0.0, 1.0}, "masks are binary after loading"
        fraction = y.mean(axis=(1, 2, 3))
        assert ((fraction > 0.05) & (fraction < 0.95)).all(), "both classes in every mask"

    def pixels(paths):  # the decoded pixels, as stored: the same bytes for the same image
        return np.stack([np.asarray(Image.open(path)) for path in paths])

    train = content_hashes(pixels(sorted((folder / "train" / "image").glob("*.png"))))
    unlabelled = sorted((folder / "test").glob("*.png"))
    assert len(unlabelled) == 30
    assert overlap(train, content_hashes(pixels(unlabelled))) == 0
    assert len(set(train)) == len(train) == 25


# ---- the synthetic ECG beats (detection in signals) ------------------------------------


@cache
def ecg(use_mitdb: bool):
    from dlcc.ecg.dataset import build_windows

    return build_windows(
        seed=0, n_train_records=4, n_val_records=2, n_test_records=2, record_s=30.0,
        use_mitdb=use_mitdb,
    )  # fmt: skip


@pytest.mark.parametrize("use_mitdb", [False, True], ids=["synthetic", "with-mitdb"])
def test_ecg_windows_schema_and_no_record_in_two_splits(use_mitdb):
    """Windows (n, 1, L) with heatmaps in [0, 1]; a record never spans two splits.

    Windows overlap in time (hop < window), so two windows of one record share samples: a
    record in the training and the test split would leak. Hence the split is by record.
    """
    if use_mitdb:
        from dlcc.data.paths import resolve_data_dir

        if not (resolve_data_dir() / "mitdb" / "100.hea").is_file():
            pytest.skip(f"MIT-BIH record 100 is not under {resolve_data_dir()}/mitdb")
    built = ecg(use_mitdb)
    assert built.real_data == use_mitdb
    records = {}
    for split in ("train", "val", "test"):
        windows = getattr(built, split)
        assert windows.x.dtype == np.float32 and windows.x.shape[1:] == (1, built.window)
        assert windows.y.shape == windows.x.shape and np.isfinite(windows.x).all()
        assert windows.y.min() >= 0.0 and windows.y.max() <= 1.0 + 1e-6
        assert windows.y.max() > 0.9, "the heatmaps peak at the beats"
        records[split] = set(windows.record.tolist())
        assert all(built.records[r].split == split for r in records[split])
    assert not records["train"] & records["test"] and not records["train"] & records["val"]
    assert not records["val"] & records["test"]
    train = content_hashes(built.train.x)
    assert overlap(train, content_hashes(built.test.x)) == 0
    assert overlap(train, content_hashes(built.val.x)) == 0
