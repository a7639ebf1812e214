"""Helpers of the tests/ml lesson (see README.md): content hashes, datasets that may be absent."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest


def content_hashes(examples: np.ndarray) -> list[str]:
    """The sha256 of each example's bytes (row of the first axis)."""
    examples = np.ascontiguousarray(examples)
    return [hashlib.sha256(example.tobytes()).hexdigest() for example in examples]


def overlap(first: list[str], second: list[str]) -> int:
    """How many examples of `second` have an exact copy in `first`."""
    seen = set(first)
    return sum(digest in seen for digest in second)


def require_dataset(name: str):
    """The dataset's folder, or a skip that says how to get it."""
    from dlcc.data.paths import find_dataset_folder, resolve_data_dir
    from dlcc.data.registry import get_spec

    root = resolve_data_dir()
    folder = find_dataset_folder(get_spec(name), root)
    if folder is None:
        pytest.skip(f"{name} is not under {root} (set DLCC_DATA_DIR, or dlcc data fetch {name})")
    return folder
