"""CIFAR-10 batches: loading whichever batches exist, and refusing unsafe or damaged pickles."""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest
from data_factories import cifar_batch, write_tiny_cifar

from dlcc.data import load_dataset
from dlcc.data.cifar import load_cifar_folder, read_batch, read_class_names, safe_unpickle
from dlcc.errors import DataError


def test_loader_reads_only_the_batches_present(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    written = write_tiny_cifar(
        folder, train_batches={"data_batch_2": 5, "data_batch_4": 3}, test_count=4
    )
    x_train, y_train, _, y_test, classes = load_cifar_folder(folder)
    assert x_train.shape == (8, 3, 32, 32) and x_train.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.shape == (4,)
    expected = np.concatenate([written["data_batch_2"][b"data"], written["data_batch_4"][b"data"]])
    np.testing.assert_array_equal(x_train.reshape(8, -1), expected)
    assert (
        y_train.tolist() == written["data_batch_2"][b"labels"] + written["data_batch_4"][b"labels"]
    )
    assert classes[0] == "airplane" and classes[9] == "truck"


def test_rows_are_channel_major_red_then_green_then_blue(tmp_path):
    record = cifar_batch(1, seed=0)
    record[b"data"][0] = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(record))
    images, _ = read_batch(path)
    assert images[0, :, 5, 7].tolist() == [10, 20, 30]


def test_load_dataset_on_a_subset_splits_ten_percent_for_validation(tmp_path):
    write_tiny_cifar(tmp_path / "cifar-10-batches-py", train_batches={"data_batch_1": 50})
    data = load_dataset("cifar10", tmp_path)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (45, 5, 10)
    assert data.x_train.shape[1:] == (3, 32, 32)
    assert data.mean.shape == (3,) and data.std.shape == (3,)


def test_py2_style_pickle_with_bytes_type_codes_loads(tmp_path):
    """The official files come from Python 2: under encoding="bytes" type codes arrive as bytes."""
    _reconstruct = np.zeros(1).__reduce__()[0]  # numpy's own, whatever module it lives in
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251

    class Py2Dtype:
        def __reduce__(self):
            return (np.dtype, (b"u1", False, True), (3, b"|", None, None, None, -1, -1, 0))

    class Py2Array:
        def __reduce__(self):
            return (
                _reconstruct,
                (np.ndarray, (0,), b"b"),
                (1, data.shape, Py2Dtype(), False, data.tobytes()),
            )

    payload = pickle.dumps({b"data": Py2Array(), b"labels": [3, 7]}, protocol=3)
    # Spell the module as NumPy 1.x (and so the official files) did.
    payload = payload.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in payload
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    images, labels = read_batch(path)
    np.testing.assert_array_equal(images.reshape(2, -1), data)
    assert labels.tolist() == [3, 7]


# ---------------------------------------------------------------- refusing unsafe files


class _RunsCode:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_a_pickle_that_would_run_code_is_refused_before_running_it(tmp_path):
    evidence = tmp_path / "code-was-executed"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsCode(evidence), b"labels": [0]}))
    with pytest.raises(DataError) as error:
        read_batch(path)
    message = str(error.value)
    assert str(path) in message
    assert "refusing to load global posix.mkdir" in message
    assert "delete it" in message
    assert not evidence.exists()


@pytest.mark.parametrize(
    "payload_factory",
    [
        pytest.param(lambda: np.ma.masked_array([1, 2, 3]), id="ndarray-subclass"),
        pytest.param(lambda: np.array([object()], dtype=object)[:0], id="object-array"),
        pytest.param(lambda: np.zeros(2, dtype=[("a", "u1")]), id="structured-array"),
        pytest.param(lambda: {1, 2}, id="not-an-array"),
        pytest.param(lambda: eval, id="builtins-eval"),
        pytest.param(lambda: np.dtype("u1").type, id="numpy-scalar-type"),
    ],
)
def test_anything_beyond_a_plain_numeric_array_is_refused(tmp_path, payload_factory):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": payload_factory(), b"labels": []}, protocol=4))
    with pytest.raises(DataError, match=r"not an official CIFAR-10 batch|b'data' is"):
        read_batch(path)


def test_truncated_pickle_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(cifar_batch(20, seed=0))[:5000])
    with pytest.raises(DataError, match=r"data_batch_1 is (truncated or )?corrupt"):
        read_batch(path)


def test_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "batches.meta"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_class_names(path)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ([1, 2, 3], "holds a list, expected a CIFAR-10 batch dict"),
        ({b"labels": [0]}, "b'data' is NoneType"),
        ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, "float32 array"),
        ({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}, "100 values per image"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 entries for 2 images"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}, "integers 0..9"),
    ],
)
def test_unexpected_structure_is_described(tmp_path, record, expected):
    path = tmp_path / "data_batch_5"
    path.write_bytes(pickle.dumps(record))
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_batch(path)


def test_str_keys_from_a_python3_resave_are_accepted(tmp_path):
    record = {key.decode(): value for key, value in cifar_batch(2, seed=0).items()}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(record))
    images, _ = read_batch(path)
    assert images.shape == (2, 3, 32, 32)


def test_safe_unpickle_reports_an_unreadable_path(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        safe_unpickle(tmp_path / "nope")


def test_codecs_encode_is_allowed_only_for_latin1(tmp_path):
    class OtherCodec:
        def __reduce__(self):
            import _codecs

            return (_codecs.encode, ("abc", "rot13"))

    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": OtherCodec(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match=re.escape("refusing _codecs.encode with 'rot13'")):
        read_batch(path)
