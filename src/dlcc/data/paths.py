"""Where datasets live on disk, and which of their files are there.

The data directory is chosen in this order:
1. the ``--data-dir`` argument (``data_dir`` in the Python API);
2. the environment variable ``DLCC_DATA_DIR`` (ignored when empty);
3. ``~/.cache/dlcc``.

A dataset already in that directory in its publisher's layout is read where it is; nothing
is copied, so a read-only shared folder works.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlcc.data.registry import DatasetFile, DatasetSpec

DATA_DIR_ENV = "DLCC_DATA_DIR"


def default_data_dir() -> Path:
    """``~/.cache/dlcc``, resolved against the current HOME."""
    return Path.home() / ".cache" / "dlcc"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use: `data_dir`, else $DLCC_DATA_DIR, else ~/.cache/dlcc.

    The folder need not exist yet (``fetch`` creates it); ``~`` is expanded.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "")
    # The Makefile exports DLCC_DATA_DIR empty when the shared folder is absent: treat as unset.
    if from_env.strip():
        return Path(from_env).expanduser()
    return default_data_dir()


def data_dir_origin(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Why `resolve_data_dir` chose its answer, for messages: ``--data-dir`` etc."""
    if data_dir is not None and str(data_dir) != "":
        return "--data-dir"
    if os.environ.get(DATA_DIR_ENV, "").strip():
        return f"${DATA_DIR_ENV}"
    return "default"


def locate_file(folder: Path, dataset_file: DatasetFile) -> Path | None:
    """The path of `dataset_file` in `folder` under any name it may have, or None."""
    for name in dataset_file.accepted_names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    """Filenames the loader needs that `folder` lacks.

    Optional files (the CIFAR-10 training batches) are reported only when none of them is
    present, because any non-empty subset of them is usable.
    """
    missing = [
        file.filename for file in spec.files if file.required and locate_file(folder, file) is None
    ]
    optional = [file for file in spec.files if not file.required]
    if optional and all(locate_file(folder, file) is None for file in optional):
        missing.append(f"at least one of {', '.join(file.filename for file in optional)}")
    return missing


def find_dataset_folder(spec: DatasetSpec, data_root: Path) -> Path | None:
    """The first of the spec's candidate folders under `data_root` that holds a usable copy."""
    for relative in spec.folders:
        folder = data_root / relative
        if folder.is_dir() and not missing_files(spec, folder):
            return folder
    return None


def fetch_folder(spec: DatasetSpec, data_root: Path) -> Path:
    """Where ``fetch`` puts (or completes) the dataset.

    A candidate folder that already holds some of the files is completed in place; otherwise
    the first candidate is used.
    """
    for relative in spec.folders:
        folder = data_root / relative
        if folder.is_dir() and any(locate_file(folder, file) for file in spec.files):
            return folder
    return data_root / spec.folders[0]
