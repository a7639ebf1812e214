"""CIFAR-10 in its official Python layout (``cifar-10-batches-py/``), read safely.

Each batch file is a pickled dict ``{b"data": uint8 array (n, 3072), b"labels": [n ints],
b"batch_label": bytes, ...}``; ``batches.meta`` holds ``{b"label_names": [10 bytes], ...}``.
A row of ``data`` is one 32x32 image, channel-major: 1024 red, 1024 green, 1024 blue values.

Why a restricted unpickler: unpickling runs whatever callables the file names, so a
malicious "batch" could run code. A plain ``pickle.load`` is never used here. The official
files were pickled from NumPy, so the ``data`` array needs exactly three globals to be
rebuilt (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; NumPy 2
spells the first ``numpy._core...``); a copy re-saved by Python 3 with pickle protocol 2
also needs ``_codecs.encode`` (text -> bytes). Those, and nothing else, are allowed, each
behind a guard that only builds a plain numeric array or latin-1 bytes; every other global is
refused. The loaded
object is then checked against the expected dict structure before anything uses it.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dlcc.data.registry import CIFAR10_TRAIN_BATCHES
from dlcc.errors import DataError

CIFAR_IMAGE_SHAPE = (3, 32, 32)
CIFAR_VALUES_PER_IMAGE = 3 * 32 * 32
META_FILENAME = "batches.meta"
TEST_BATCH = "test_batch"
DEFAULT_REMEDY = "delete it and run `dlcc data fetch cifar10`"


MAX_PICKLED_ARRAY_ELEMENTS = 1 << 31  # far above CIFAR-10's 50,000 x 3,072 values


class _NdarrayStandIn:
    """Given to the pickle for ``numpy.ndarray``: it may only name the type to rebuild."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray directly")


_NDARRAY_STAND_IN = _NdarrayStandIn()


def _numeric_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """Stands in for ``numpy.dtype``: builds plain numeric dtypes only (no objects)."""
    # Python 2 pickles (the official files) give the type code as bytes under encoding="bytes".
    if isinstance(spec, bytes):
        spec = spec.decode("ascii", "replace")
    if not isinstance(spec, str):
        raise pickle.UnpicklingError(f"refusing dtype specification {spec!r}")
    try:
        dtype = np.dtype(spec)
    except TypeError as error:
        raise pickle.UnpicklingError(f"refusing dtype specification {spec!r}") from error
    if dtype.kind not in "biuf":  # no objects, no structured/void types
        raise pickle.UnpicklingError(f"refusing non-numeric dtype {dtype}")
    return dtype


def _reconstruct_plain_array(subtype: Any, shape: Any, dtype_spec: Any) -> np.ndarray:
    """Stands in for numpy's ``_reconstruct``: an empty plain ndarray for BUILD to fill."""
    # Only ndarray itself may be rebuilt: a subclass could bring its own __setstate__.
    if subtype is not _NDARRAY_STAND_IN:
        raise pickle.UnpicklingError(f"refusing to rebuild an array of type {subtype!r}")
    if not (
        isinstance(shape, tuple)
        and all(isinstance(size, int) and size >= 0 for size in shape)
        and int(np.prod(shape, dtype=np.float64)) <= MAX_PICKLED_ARRAY_ELEMENTS
    ):
        raise pickle.UnpicklingError(f"refusing array shape {shape!r}")
    return np.ndarray(shape, _numeric_dtype(dtype_spec))


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """Stands in for ``_codecs.encode``: how Python 3 pickles bytes under protocol 0-2."""
    # Only the one encoding pickle itself uses; any other name would make the codec
    # registry import a module chosen by the file.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin-1")


_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_plain_array,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct_plain_array,
    ("numpy", "ndarray"): _NDARRAY_STAND_IN,
    ("numpy", "dtype"): _numeric_dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals a NumPy-array pickle needs.

    Every other ``module.name`` (``os.system``, ``builtins.eval``, any class) raises
    ``pickle.UnpicklingError`` before it is imported, so a malicious file cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent references")


def safe_unpickle(path: Path, *, remedy: str = DEFAULT_REMEDY) -> Any:
    """Unpickle `path` with `RestrictedUnpickler` (bytes strings kept as bytes).

    Raises:
        DataError: the file is missing, truncated, corrupt, or asks for anything beyond a
            plain NumPy array; the message names the file and says what to do.
    """
    path = Path(path)
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path} ({error}): {remedy}") from error
    try:
        # encoding="bytes": the official files were written by Python 2, whose str must stay
        # bytes (the pixel buffer would be mangled by decoding it as text).
        return RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        if "refusing" in str(error):
            raise DataError(
                f"{path} is not an official CIFAR-10 batch and was not loaded: {error}, which a "
                f"CIFAR-10 file never contains (it may be malicious): {remedy}"
            ) from error
        raise DataError(f"{path} is corrupt ({error}): {remedy}") from error
    except Exception as error:
        # A damaged pickle can fail with almost any exception type (EOFError when truncated,
        # ValueError, TypeError, IndexError, MemoryError...); none of them may escape raw.
        raise DataError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}): {remedy}"
        ) from error


def _bytes_keys(record: dict) -> dict:
    # Files re-pickled from Python 3 may use str keys; treat them like the official bytes keys.
    return {key.encode() if isinstance(key, str) else key: value for key, value in record.items()}


def read_batch(path: Path, *, remedy: str = DEFAULT_REMEDY) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file (``data_batch_K`` or ``test_batch``).

    Returns:
        images: uint8 array of shape (n, 3, 32, 32), values 0..255.
        labels: int64 array of shape (n,), values 0..9.
    """
    record = safe_unpickle(path, remedy=remedy)
    if not isinstance(record, dict):
        raise DataError(
            f"{path} holds a {type(record).__name__}, expected a CIFAR-10 batch dict: {remedy}"
        )
    record = _bytes_keys(record)
    data, labels = record.get(b"data"), record.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        described = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataError(
            f"{path}: b'data' is {described}, expected a uint8 array of shape "
            f"(n, {CIFAR_VALUES_PER_IMAGE}): {remedy}"
        )
    if data.shape[1] != CIFAR_VALUES_PER_IMAGE:
        raise DataError(
            f"{path}: b'data' has {data.shape[1]} values per image, expected "
            f"{CIFAR_VALUES_PER_IMAGE} (3x32x32): {remedy}"
        )
    if not isinstance(labels, list | tuple | np.ndarray) or len(labels) != len(data):
        count = len(labels) if hasattr(labels, "__len__") else type(labels).__name__
        raise DataError(
            f"{path}: b'labels' has {count} entries for {len(data)} images, expected one "
            f"integer label per image: {remedy}"
        )
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: b'labels' are not integers ({error}): {remedy}") from error
    if label_array.ndim != 1 or (
        label_array.size and (label_array.min() < 0 or label_array.max() > 9)
    ):
        raise DataError(f"{path}: b'labels' must be integers 0..9: {remedy}")
    return data.reshape(-1, *CIFAR_IMAGE_SHAPE), label_array  # (n, 3, 32, 32), (n,)


def read_class_names(path: Path, *, remedy: str = DEFAULT_REMEDY) -> list[str]:
    """The 10 class names from ``batches.meta``, index = label."""
    record = safe_unpickle(path, remedy=remedy)
    names = _bytes_keys(record).get(b"label_names") if isinstance(record, dict) else None
    if (
        not isinstance(names, list)
        or len(names) != 10
        or not all(isinstance(name, bytes | str) for name in names)
    ):
        raise DataError(
            f"{path} does not hold b'label_names' as a list of 10 names, as the official "
            f"batches.meta does: {remedy}"
        )
    return [name.decode("utf-8", "replace") if isinstance(name, bytes) else name for name in names]


def present_train_batches(folder: Path) -> list[str]:
    """Names of the official training batches present in `folder`, in order."""
    return [name for name in CIFAR10_TRAIN_BATCHES if (folder / name).is_file()]


def load_cifar_folder(
    folder: Path, *, remedy: str = DEFAULT_REMEDY
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read every official batch present in a ``cifar-10-batches-py`` folder.

    Any non-empty subset of ``data_batch_1..5`` is accepted (the shared folder holds a
    4,000-image part of ``data_batch_1``); ``test_batch`` and ``batches.meta`` are required.

    Returns:
        x_train: uint8 (N_train, 3, 32, 32); y_train: int64 (N_train,);
        x_test: uint8 (N_test, 3, 32, 32); y_test: int64 (N_test,); class names (10).
    """
    folder = Path(folder)
    train_batches = present_train_batches(folder)
    if not train_batches:
        raise DataError(
            f"{folder} has no training batch: expected at least one of "
            f"{', '.join(CIFAR10_TRAIN_BATCHES)}: run `dlcc data fetch cifar10`"
        )
    class_names = read_class_names(folder / META_FILENAME, remedy=remedy)
    train_parts = [read_batch(folder / name, remedy=remedy) for name in train_batches]
    x_test, y_test = read_batch(folder / TEST_BATCH, remedy=remedy)
    x_train = np.concatenate([images for images, _ in train_parts])
    y_train = np.concatenate([labels for _, labels in train_parts])
    return x_train, y_train, x_test, y_test, class_names
