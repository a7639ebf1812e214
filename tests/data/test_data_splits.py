"""Seeded stratified splits, and normalisation statistics taken from the training split only."""

from __future__ import annotations

import numpy as np
import pytest
from data_factories import write_tiny_cifar, write_tiny_mnist_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcc.data import load_dataset
from dlcc.data.splits import (
    channel_mean_std,
    holdout_count,
    normalize_images,
    split_holdout,
    stratified_holdout_indices,
)
from dlcc.errors import DataError


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=200),
    fraction=st.floats(0, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_holdout_is_exact_distinct_deterministic_and_proportional(labels, fraction, seed):
    labels = np.array(labels)
    count = round(fraction * len(labels))
    chosen = stratified_holdout_indices(labels, count, np.random.default_rng(seed))
    again = stratified_holdout_indices(labels, count, np.random.default_rng(seed))
    np.testing.assert_array_equal(chosen, again)
    assert len(chosen) == count == len(np.unique(chosen))
    assert np.all(np.diff(chosen) > 0)
    # Stratified: each class is held out in proportion, to within one item (plus rounding).
    for label in np.unique(labels):
        in_class = np.sum(labels == label)
        held = np.sum(labels[chosen] == label)
        assert abs(held - count * in_class / len(labels)) <= 2


def test_split_is_the_same_for_the_same_seed_and_differs_for_another():
    images = np.arange(100)[:, None]
    labels = np.arange(100) % 4
    first = split_holdout(images, labels, 20, seed=3)
    second = split_holdout(images, labels, 20, seed=3)
    other = split_holdout(images, labels, 20, seed=4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])
    kept, held = set(first[0].ravel()), set(first[2].ravel())
    assert not kept & held and len(kept | held) == 100
    assert np.bincount(first[3]).tolist() == [5, 5, 5, 5]


@pytest.mark.parametrize(
    ("val_size", "message"),
    [
        (1.0, r"in \[0, 1\)"),
        (-1, "leaving none"),
        (100, "leaving none"),
        ("10", "must be an int"),
        (True, "must be an int"),
    ],
)
def test_bad_val_sizes_are_data_errors(val_size, message):
    with pytest.raises(DataError, match=message):
        holdout_count(val_size, 100)


def test_channel_statistics_match_numpy_and_guard_constant_channels():
    rng = np.random.default_rng(0)
    images = rng.random((5000, 3, 4, 4)).astype(np.float32)
    images[:, 2] = 0.5  # a constant channel
    mean, std = channel_mean_std(images)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == (3,)
    np.testing.assert_allclose(mean, images.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std[:2], images[:, :2].std(axis=(0, 2, 3)), rtol=1e-5)
    assert std[2] == 1.0
    normalised = normalize_images(images, mean, std)
    assert np.all(np.isfinite(normalised))
    np.testing.assert_allclose(normalised.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_normalisation_statistics_come_from_the_training_split_only(tmp_path):
    folder = tmp_path / "mnist-csv"
    write_tiny_mnist_csv(folder, train_count=40, test_count=10)
    # Make test images bright: if they leaked into the statistics, the mean would move.
    np.savetxt(folder / "images_test.csv", np.full((10, 784), 255), fmt="%d", delimiter=",")
    raw = load_dataset("mnist-csv", tmp_path, normalize=False, val_size=10)
    expected_mean = raw.x_train.mean(axis=(0, 2, 3))
    expected_std = raw.x_train.std(axis=(0, 2, 3))
    np.testing.assert_allclose(raw.mean, expected_mean, rtol=1e-5)
    np.testing.assert_allclose(raw.std, expected_std, rtol=1e-5)
    # ... and not of train + val together:
    with_val = np.concatenate([raw.x_train, raw.x_val]).mean(axis=(0, 2, 3))
    assert not np.allclose(raw.mean, with_val, rtol=1e-7, atol=0)

    normalised = load_dataset("mnist-csv", tmp_path, val_size=10)
    np.testing.assert_allclose(normalised.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(normalised.mean, raw.mean)
    # val and test are transformed with the training statistics, not their own:
    np.testing.assert_allclose(
        normalised.x_test, (raw.x_test - raw.mean[0]) / raw.std[0], rtol=1e-5, atol=1e-5
    )
    assert normalised.x_test.mean() > 1  # the bright test set stays visibly off-centre


def test_per_channel_statistics_for_colour_images(tmp_path):
    write_tiny_cifar(tmp_path / "cifar-10-batches-py", train_batches={"data_batch_1": 40})
    data = load_dataset("cifar10", tmp_path, val_size=8)
    assert data.mean.shape == data.std.shape == (3,)
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2, 3)), np.zeros(3), atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2, 3)), np.ones(3), atol=1e-4)
