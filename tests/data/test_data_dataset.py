"""`load_dataset`: shapes, dtypes, split sizes, the digits default, and missing-data messages."""

from __future__ import annotations

import numpy as np
import pytest

from dlcc.data import Dataset, load_dataset
from dlcc.data.digits import load_digits_arrays
from dlcc.errors import DataError


def test_digits_shapes_dtypes_and_default_split_sizes():
    data = load_dataset("digits")
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.x_train.shape == (1257, 1, 8, 8)
    assert data.x_val.shape == (180, 1, 8, 8)
    assert data.x_test.shape == (360, 1, 8, 8)
    for images in (data.x_train, data.x_val, data.x_test):
        assert images.dtype == np.float32
    for labels in (data.y_train, data.y_val, data.y_test):
        assert labels.dtype == np.int64 and labels.ndim == 1
    assert data.mean.shape == data.std.shape == (1,)
    assert data.mean.dtype == data.std.dtype == np.float32
    assert data.classes == [str(digit) for digit in range(10)]
    assert data.image_shape == (1, 8, 8) and data.num_classes == 10
    assert "train 1,257, val 180, test 360" in repr(data)


def test_digits_unnormalised_values_are_pixel_counts_over_16():
    data = load_dataset("digits", normalize=False)
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert everything.min() == 0.0 and everything.max() == 1.0
    np.testing.assert_array_equal(np.unique(everything * 16), np.arange(17))


def test_digits_read_directly_equals_scikit_learns_load_digits():
    from sklearn.datasets import load_digits

    images, labels = load_digits_arrays()
    oracle = load_digits()
    np.testing.assert_array_equal(images[:, 0], oracle.images)
    np.testing.assert_array_equal(labels, oracle.target)


def test_digits_splits_partition_all_1797_images_stratified():
    data = load_dataset("digits", normalize=False)
    images, _ = load_digits_arrays()
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 1797
    all_rows = {row.tobytes() for row in (images / 16).astype(np.float32).reshape(1797, -1)}
    split_rows = np.concatenate([data.x_train, data.x_val, data.x_test]).reshape(1797, -1)
    assert {row.tobytes() for row in split_rows} == all_rows
    # Every class appears in every split in about its share (178 or so images per class).
    assert np.bincount(data.y_test, minlength=10).min() >= 34
    assert np.bincount(data.y_val, minlength=10).min() >= 17


def test_digits_test_split_is_fixed_while_validation_follows_the_seed():
    first = load_dataset("digits", seed=0, normalize=False)
    second = load_dataset("digits", seed=1, normalize=False)
    again = load_dataset("digits", seed=0, normalize=False)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    assert not np.array_equal(first.y_val, second.y_val) or not np.array_equal(
        first.x_val, second.x_val
    )
    np.testing.assert_array_equal(first.x_val, again.x_val)
    np.testing.assert_array_equal(first.x_train, again.x_train)


def test_val_size_accepts_a_count_a_fraction_and_zero():
    assert len(load_dataset("digits", val_size=100).y_val) == 100
    assert len(load_dataset("digits", val_size=0.5).y_val) == round(0.5 * 1437)
    empty = load_dataset("digits", val_size=0)
    assert empty.x_val.shape == (0, 1, 8, 8) and empty.y_val.shape == (0,)


def test_normalised_training_split_has_zero_mean_unit_std():
    data = load_dataset("digits")
    assert abs(float(data.x_train.mean())) < 1e-5
    assert abs(float(data.x_train.std()) - 1) < 1e-4


def test_arrays_are_independent_copies():
    first = load_dataset("digits")
    first.x_train[:] = 0
    assert load_dataset("digits").x_train.any()


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset("mnist", tmp_path)
    message = str(error.value)
    assert "dataset mnist is not in" in message
    assert "Run `dlcc data fetch mnist`" in message
    assert f"{tmp_path / 'mnist'}/" in message
    assert "DLCC_DATA_DIR" in message


def test_missing_dataset_uses_the_default_cache_folder(isolated_home):
    with pytest.raises(DataError, match=str(isolated_home / ".cache" / "dlcc" / "fashion-mnist")):
        load_dataset("fashion-mnist")


def test_unknown_name():
    with pytest.raises(DataError, match="unknown dataset 'mnsit'"):
        load_dataset("mnsit")


def test_tiny_mnist_loads_and_a_corrupted_file_names_itself(tiny_mnist):
    data = load_dataset("mnist", tiny_mnist.data_dir, val_size=10)
    assert data.x_train.shape == (50, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert data.source == tiny_mnist.folder

    labels = tiny_mnist.folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-8])  # cut the gzip trailer: truncated stream
    with pytest.raises(DataError) as error:
        load_dataset("mnist", tiny_mnist.data_dir)
    assert str(labels) in str(error.value)
    assert "delete it and run `dlcc data fetch mnist`" in str(error.value)


def test_tiny_mnist_with_altered_content_fails_its_checksum(tiny_mnist):
    from dlcc.data.idx import read_idx, write_idx

    path = tiny_mnist.folder / "train-labels-idx1-ubyte.gz"
    labels = read_idx(path)
    labels[0] = (labels[0] + 1) % 10  # still a valid IDX file, but not the registered data
    write_idx(path, labels)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: sha256 of its decompressed"):
        load_dataset("mnist", tiny_mnist.data_dir)
