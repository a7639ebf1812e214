"""Helpers of the tests/ml lesson (see README.md): content hashes, datasets that may be absent."""

from __future__ import annotations

import pytest

# The package's data tests (`dlcc data check`): one content hash for both.
from dlcc.data.checks import content_hashes  # noqa: F401
from dlcc.data.checks import count_overlap as overlap  # noqa: F401


def require_dataset(name: str):
    """The dataset's folder, or a skip that says how to get it."""
    from dlcc.data.paths import find_dataset_folder, resolve_data_dir
    from dlcc.data.registry import get_spec

    root = resolve_data_dir()
    folder = find_dataset_folder(get_spec(name), root)
    if folder is None:
        pytest.skip(f"{name} is not under {root} (set DLCC_DATA_DIR, or dlcc data fetch {name})")
    return folder
