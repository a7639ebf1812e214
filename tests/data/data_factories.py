"""Tiny datasets written by the tests themselves (never real data), and small checks."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np

from dlcc.data import registry
from dlcc.data.idx import write_idx

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def content_sha256(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return hashlib.sha256(raw).hexdigest()


def write_tiny_idx_dataset(
    folder: Path, *, train_count: int = 60, test_count: int = 20, side: int = 28, seed: int = 0
) -> dict[str, str]:
    """Four MNIST-layout .gz IDX files of random images; returns filename -> content sha256."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (train_count, side, side), np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(train_count, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (test_count, side, side), np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(test_count, dtype=np.uint8) % 10,
    }
    for filename, array in arrays.items():
        write_idx(folder / filename, array)
    return {filename: content_sha256(folder / filename) for filename in arrays}


def tiny_mnist_spec(checksums: dict[str, str], *, urls_base: str = "") -> registry.DatasetSpec:
    """The real mnist registry entry with checksums (and URLs) for the tiny files."""
    files = tuple(
        dataclasses.replace(
            file,
            sha256=checksums[file.filename],
            urls=(urls_base + file.filename,) if urls_base else file.urls,
        )
        for file in registry.MNIST.files
    )
    return dataclasses.replace(registry.MNIST, files=files, default_val_size=10)


def cifar_batch(count: int, *, seed: int, label_offset: int = 0) -> dict:
    """A CIFAR-10 batch dict as the official files hold it (bytes keys)."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"tiny test batch",
        b"labels": [(index + label_offset) % 10 for index in range(count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [f"image_{index}.png".encode() for index in range(count)],
    }


CIFAR_CLASS_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def write_tiny_cifar(
    folder: Path, *, train_batches: dict[str, int], test_count: int = 10
) -> dict[str, dict]:
    """A ``cifar-10-batches-py``-style folder with the given batches; returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for index, (name, count) in enumerate(train_batches.items()):
        written[name] = cifar_batch(count, seed=index, label_offset=index)
    written["test_batch"] = cifar_batch(test_count, seed=99, label_offset=3)
    for name, record in written.items():
        (folder / name).write_bytes(pickle.dumps(record, protocol=4))
    meta = {b"label_names": CIFAR_CLASS_NAMES, b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def write_tiny_mnist_csv(
    folder: Path, *, train_count: int = 30, test_count: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """The course's CSV layout with random 0..255 pixels; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "images_train": rng.integers(0, 256, (train_count, 784)),
        "labels_train": np.arange(train_count) % 10,
        "images_test": rng.integers(0, 256, (test_count, 784)),
        "labels_test": np.arange(test_count) % 10,
    }
    for name, array in arrays.items():
        np.savetxt(folder / f"{name}.csv", array.reshape(len(array), -1), fmt="%d", delimiter=",")
    return arrays


def leftover_files(folder: Path) -> list[str]:
    """Every file under `folder` (temporaries included), for "nothing was left" checks."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
