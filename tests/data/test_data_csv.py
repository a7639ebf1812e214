"""The course's CSV layout (mnist-csv), on tiny files written here."""

from __future__ import annotations

import re

import numpy as np
import pytest
from data_factories import write_tiny_mnist_csv

from dlcc.data import load_dataset
from dlcc.data.csv_format import load_csv_split, read_csv_images, read_csv_labels
from dlcc.errors import DataError


def test_tiny_mnist_csv_loads_as_nchw_with_a_validation_split(tmp_path):
    arrays = write_tiny_mnist_csv(tmp_path / "mnist-csv", train_count=30, test_count=10)
    data = load_dataset("mnist-csv", tmp_path, normalize=False)
    assert data.x_train.shape == (27, 1, 28, 28) and data.x_train.dtype == np.float32
    assert data.x_val.shape == (3, 1, 28, 28)
    assert data.x_test.shape == (10, 1, 28, 28)
    np.testing.assert_allclose(data.x_test.reshape(10, -1), arrays["images_test"] / 255, rtol=1e-6)
    assert data.y_test.tolist() == arrays["labels_test"].tolist()
    assert data.classes == [str(digit) for digit in range(10)]


def test_values_already_in_unit_range_are_kept(tmp_path):
    path = tmp_path / "images_train.csv"
    values = np.linspace(0, 1, 2 * 784).reshape(2, 784)
    np.savetxt(path, values, delimiter=",")
    np.testing.assert_allclose(read_csv_images(path).reshape(2, -1), values, rtol=1e-6)


def test_a_header_row_is_a_clear_error(tmp_path):
    path = tmp_path / "images_train.csv"
    path.write_text(",".join(f"pixel{i}" for i in range(784)) + "\n" + ",".join("0" * 784) + "\n")
    with pytest.raises(DataError, match=r"images_train\.csv is not a table of numbers.*no header"):
        read_csv_images(path)


def test_wrong_number_of_values_per_row(tmp_path):
    path = tmp_path / "images_train.csv"
    np.savetxt(path, np.zeros((2, 100)), delimiter=",")
    with pytest.raises(DataError, match="100 values per row, expected 784"):
        read_csv_images(path)


def test_ragged_rows_are_a_clear_error(tmp_path):
    path = tmp_path / "images_train.csv"
    path.write_text(",".join("1" * 784) + "\n" + ",".join("1" * 783) + "\n")
    with pytest.raises(DataError, match=r"images_train\.csv is not a table of numbers"):
        read_csv_images(path)


def test_out_of_range_pixels_and_labels(tmp_path):
    images, labels = tmp_path / "images.csv", tmp_path / "labels.csv"
    np.savetxt(images, np.full((1, 784), 300), delimiter=",")
    np.savetxt(labels, [[1.5]], delimiter=",")
    with pytest.raises(DataError, match="values from 300 to 300"):
        read_csv_images(images)
    with pytest.raises(DataError, match=re.escape("integer labels 0..9")):
        read_csv_labels(labels)


def test_one_hot_labels_are_refused_with_an_explanation(tmp_path):
    path = tmp_path / "labels_train.csv"
    np.savetxt(path, np.eye(10)[:3], delimiter=",")
    with pytest.raises(DataError, match="10 values per row, expected one label per row"):
        read_csv_labels(path)


def test_row_counts_must_agree(tmp_path):
    folder = tmp_path / "mnist-csv"
    write_tiny_mnist_csv(folder, train_count=5, test_count=2)
    np.savetxt(folder / "labels_train.csv", np.arange(4), fmt="%d")
    expected = "images_train.csv has 5 rows but labels_train.csv has 4"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_csv_split(folder / "images_train.csv", folder / "labels_train.csv")


def test_missing_mnist_csv_says_where_to_put_which_files(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset("mnist-csv", tmp_path)
    message = str(error.value)
    assert f"{tmp_path / 'mnist-csv'}/" in message
    for filename in ("images_train.csv", "labels_train.csv", "images_test.csv", "labels_test.csv"):
        assert filename in message
    assert "dlcc data fetch" not in message  # there is no download to run
