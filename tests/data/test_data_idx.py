"""IDX reading and writing: round trips, and clear errors for damaged files."""

from __future__ import annotations

import gzip
import hashlib
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlcc.data.idx import encode_idx, load_idx_split, parse_idx, read_idx, read_idx_shape, write_idx
from dlcc.errors import DataError

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(IDX_DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": False},
    )
)
def test_encode_then_parse_round_trips_any_idx_array(array):
    decoded = parse_idx(encode_idx(array))
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)
    assert decoded.flags.writeable


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_write_then_read_round_trips_through_a_file(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    write_idx(path, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    np.testing.assert_array_equal(read_idx(path), images)
    assert read_idx_shape(path) == (7, 28, 28)


def test_mnist_magic_numbers_are_written_as_published():
    assert encode_idx(np.zeros((2, 28, 28), np.uint8))[:4] == bytes.fromhex("00000803")
    assert encode_idx(np.zeros(2, np.uint8))[:4] == bytes.fromhex("00000801")


def test_multi_byte_values_are_stored_big_endian():
    assert encode_idx(np.array([1], dtype=np.int32))[-4:] == b"\x00\x00\x00\x01"


def test_truncated_idx_names_the_file_and_the_declared_size(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(encode_idx(np.zeros((10, 28, 28), np.uint8))[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is truncated.*10x28x28"):
        read_idx(path)


def test_truncated_gzip_stream_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    compressed = gzip.compress(encode_idx(np.arange(5000, dtype=np.uint8) % 10))
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is truncated or corrupt"):
        read_idx(path)
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx_shape(path.with_name("missing.gz"))


def test_truncated_header_is_a_data_error(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00000803") + b"\x00\x00")
    with pytest.raises(DataError, match="declares 3 dimensions"):
        read_idx(path)


@pytest.mark.parametrize(
    "magic", ["12345678", "00000103", "01000801", "00000800", "504b0304"], ids=str
)
def test_bad_magic_number_is_refused_with_the_value_found(tmp_path, magic):
    path = tmp_path / "not-idx"
    path.write_bytes(bytes.fromhex(magic) + b"\x00" * 64)
    with pytest.raises(DataError, match=f"not an IDX file: its magic number is 0x{magic}"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(encode_idx(np.arange(4, dtype=np.uint8)) + b"extra")
    with pytest.raises(DataError, match="has trailing bytes"):
        read_idx(path)


def test_tiny_file_is_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"\x00")
    with pytest.raises(DataError, match="fewer than the 4-byte magic number"):
        read_idx(path)


def test_content_checksum_mismatch_names_file_and_remedy(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.arange(10, dtype=np.uint8))
    right = hashlib.sha256(encode_idx(np.arange(10, dtype=np.uint8))).hexdigest()
    np.testing.assert_array_equal(read_idx(path, expected_sha256=right), np.arange(10))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: sha256.*run `dlcc data"):
        read_idx(path, expected_sha256="0" * 64, remedy="delete it and run `dlcc data fetch x`")


def test_recompressed_file_has_the_same_content_checksum(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    fast, small = tmp_path / "fast.gz", tmp_path / "small.gz"
    fast.write_bytes(gzip.compress(encode_idx(array), compresslevel=1))
    small.write_bytes(gzip.compress(encode_idx(array), compresslevel=9, mtime=12345))
    assert fast.read_bytes() != small.read_bytes()
    content = hashlib.sha256(encode_idx(array)).hexdigest()
    read_idx(fast, expected_sha256=content)
    read_idx(small, expected_sha256=content)


def test_encode_refuses_types_idx_cannot_hold():
    with pytest.raises(ValueError, match="IDX holds"):
        encode_idx(np.zeros(3, dtype=np.int64))


def test_load_idx_split_returns_nchw_uint8_and_int64_labels(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "images.gz", images)
    write_idx(tmp_path / "labels.gz", np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8))
    x, y = load_idx_split(
        tmp_path / "images.gz", tmp_path / "labels.gz", image_size=(28, 28), num_classes=10
    )
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4, 9]


def test_load_idx_split_refuses_mismatched_counts_and_shapes(tmp_path):
    write_idx(tmp_path / "images.gz", np.zeros((6, 28, 28), np.uint8))
    write_idx(tmp_path / "labels.gz", np.zeros(5, np.uint8))
    write_idx(tmp_path / "small.gz", np.zeros((6, 8, 8), np.uint8))
    write_idx(tmp_path / "bad-labels.gz", np.full(6, 12, np.uint8))
    kwargs = {"image_size": (28, 28), "num_classes": 10}
    with pytest.raises(DataError, match=re.escape("6 images but labels.gz has 5 labels")):
        load_idx_split(tmp_path / "images.gz", tmp_path / "labels.gz", **kwargs)
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        load_idx_split(tmp_path / "small.gz", tmp_path / "labels.gz", **kwargs)
    with pytest.raises(DataError, match=r"labels from 12 to 12, expected 0..9"):
        load_idx_split(tmp_path / "images.gz", tmp_path / "bad-labels.gz", **kwargs)
