"""The IDX format of MNIST and Fashion-MNIST: read, check, write.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (TT: element type, NN: number of
dimensions), then NN big-endian uint32 sizes, then the elements in C order, big-endian.
MNIST images are ``0x00000803`` (uint8, 3 dims: N x 28 x 28), labels ``0x00000801``
(uint8, 1 dim: N). Files may be gzip-compressed; that is detected from the content.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from dlcc.atomic import atomic_write
from dlcc.data.download import GZIP_MAGIC, read_errors_as_data_errors
from dlcc.errors import DataError

HEADER_PREFIX_BYTES = 4
DIMENSION_BYTES = 4

# IDX element type code -> NumPy dtype (IDX stores multi-byte values big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}

DEFAULT_REMEDY = "delete it and download it again"


def read_idx_bytes(path: Path, *, remedy: str = DEFAULT_REMEDY) -> bytes:
    """The uncompressed bytes of an IDX file (gzip or not). DataError if unreadable."""
    path = Path(path)
    with read_errors_as_data_errors(path, remedy):
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    return raw


def parse_idx(raw: bytes, *, source: str = "IDX data", remedy: str = DEFAULT_REMEDY) -> np.ndarray:
    """Decode uncompressed IDX bytes into an array of the declared shape and type.

    Checks the magic number, and that the declared dimensions account for exactly the
    number of bytes present (so a truncated file is caught, never silently reshaped).

    Returns:
        array of shape (d0, d1, ...) as declared, in native byte order, writeable.
    """
    if len(raw) < HEADER_PREFIX_BYTES:
        raise DataError(
            f"{source} is not an IDX file: it has {len(raw)} bytes, fewer than the 4-byte "
            f"magic number: {remedy}"
        )
    magic = int.from_bytes(raw[:HEADER_PREFIX_BYTES], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{source} is not an IDX file: its magic number is 0x{magic:08x}, expected "
            "0x000008NN..0x00000eNN (e.g. 0x00000803 for images, 0x00000801 for labels): "
            f"{remedy}"
        )
    header_bytes = HEADER_PREFIX_BYTES + DIMENSION_BYTES * ndim
    if len(raw) < header_bytes:
        raise DataError(
            f"{source} is truncated: its header declares {ndim} dimensions "
            f"({header_bytes} header bytes) but the file has {len(raw)} bytes: {remedy}"
        )
    dims = tuple(
        int.from_bytes(raw[offset : offset + DIMENSION_BYTES], "big")
        for offset in range(HEADER_PREFIX_BYTES, header_bytes, DIMENSION_BYTES)
    )
    dtype = IDX_DTYPES[type_code]
    element_count = math.prod(dims)
    expected_bytes = header_bytes + element_count * dtype.itemsize
    if len(raw) != expected_bytes:
        shape_text = "x".join(str(size) for size in dims)
        problem = "is truncated" if len(raw) < expected_bytes else "has trailing bytes"
        raise DataError(
            f"{source} {problem}: its header declares {shape_text} {dtype.name} values "
            f"({expected_bytes:,} bytes with the header) but it has {len(raw):,} bytes: {remedy}"
        )
    values = np.frombuffer(raw, dtype=dtype, count=element_count, offset=header_bytes)
    # astype copies: the result is writeable and in native byte order.
    return values.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(
    path: Path, *, expected_sha256: str | None = None, remedy: str = DEFAULT_REMEDY
) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into an array; see `parse_idx`.

    With `expected_sha256`, the sha256 of the *uncompressed* content must match it: a file
    that parses but holds different data is refused too.
    """
    path = Path(path)
    raw = read_idx_bytes(path, remedy=remedy)
    array = parse_idx(raw, source=str(path), remedy=remedy)
    if expected_sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_sha256:
            raise DataError(
                f"{path}: sha256 of its decompressed content is {actual}, expected "
                f"{expected_sha256}: {remedy}"
            )
    return array


def read_idx_shape(path: Path, *, remedy: str = DEFAULT_REMEDY) -> tuple[int, ...]:
    """The dimensions an IDX file's header declares, reading only the header."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == GZIP_MAGIC
        opened = gzip.open(path, "rb") if compressed else open(path, "rb")
        with opened as handle:
            prefix = handle.read(HEADER_PREFIX_BYTES)
            ndim = prefix[3] if len(prefix) == HEADER_PREFIX_BYTES else 0
            header = prefix + handle.read(DIMENSION_BYTES * ndim)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}): {remedy}"
        ) from error
    if len(header) < HEADER_PREFIX_BYTES or header[:2] != b"\0\0" or header[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number): {remedy}")
    if len(header) != HEADER_PREFIX_BYTES + DIMENSION_BYTES * ndim:
        raise DataError(f"{path} is truncated inside its header: {remedy}")
    return tuple(
        int.from_bytes(header[offset : offset + DIMENSION_BYTES], "big")
        for offset in range(HEADER_PREFIX_BYTES, len(header), DIMENSION_BYTES)
    )


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes (uncompressed) for `array`, whose dtype must be one IDX can hold."""
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in IDX_TYPE_CODES or array.ndim == 0 or array.ndim > 255:
        raise ValueError(
            f"IDX holds 1..255-dimensional uint8/int8/int16/int32/float32/float64 arrays; "
            f"got dtype {array.dtype} with {array.ndim} dimensions"
        )
    type_code = IDX_TYPE_CODES[native]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(size).to_bytes(DIMENSION_BYTES, "big") for size in array.shape
    )
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[type_code]).tobytes()
    return header + body


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzip-compressed when `path` ends in ``.gz``; atomic."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        # mtime=0 makes the bytes reproducible, so equal arrays give equal files.
        data = gzip.compress(data, mtime=0)
    with atomic_write(path) as handle:
        handle.write(data)


def load_idx_split(
    images_path: Path,
    labels_path: Path,
    *,
    image_size: tuple[int, int],
    num_classes: int,
    images_sha256: str | None = None,
    labels_sha256: str | None = None,
    remedy: str = DEFAULT_REMEDY,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split (train or test) of an MNIST-style dataset.

    Returns:
        images: uint8 array of shape (N, 1, H, W), values 0..255.
        labels: int64 array of shape (N,), values 0..num_classes-1.
    """
    images = read_idx(images_path, expected_sha256=images_sha256, remedy=remedy)
    labels = read_idx(labels_path, expected_sha256=labels_sha256, remedy=remedy)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != image_size:
        height, width = image_size
        raise DataError(
            f"{images_path} holds {images.dtype} values of shape {images.shape}, expected uint8 "
            f"images of shape (N, {height}, {width}): {remedy}"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path} holds values of shape {labels.shape}, expected one label per image "
            f"(shape (N,)): {remedy}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{images_path.name} has {len(images):,} images but {labels_path.name} has "
            f"{len(labels):,} labels; they must match: {remedy}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{labels_path} holds labels from {labels.min()} to {labels.max()}, expected "
            f"0..{num_classes - 1}: {remedy}"
        )
    return images[:, np.newaxis, :, :], labels  # (N, 1, H, W), (N,)
