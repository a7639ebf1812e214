"""Where a run came from: the code's git state, the data's checksums, the packages, the machine.

One module for the facts that `run.json` records and the experiment tracker tags a run with,
so that both say the same thing::

    git_state(".")              {"commit": "3f2a...", "dirty": False}  (None, None: not a repo)
    dataset_fingerprint(name)   {"name": "mnist", "sha256": "...", "files": 4} (None: absent)
    installed_packages()        {"numpy": "2.1.3", "torch": "2.13.0", ...}  (pip freeze)
    hardware()                  {"cpu": "...", "cores": 2, "memory_gb": 23.4, "gpus": []}

Everything here is read-only and never raises for a missing tool or file: a run must not
fail because git is not installed or the data folder moved. The absent fact is None.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # bytes read at a time when hashing


def git_state(directory: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The commit checked out in ``directory``'s git work tree, and whether it has changes.

    Returns ``{"commit": 40-hex str | None, "dirty": bool | None}``; both None when
    ``directory`` is not inside a git work tree or git is not installed. Untracked files
    count as dirty (they can change what runs), ignored ones (``runs/``, ``.venv``) do not.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: str | os.PathLike[str]) -> tuple[str, int]:
    """One sha256 for a folder's content: of each file's relative path and sha256, sorted.

    Returns (hex digest, number of files). Renaming, adding, removing or editing any file
    changes it; the files' times and the order the file system lists them in do not.
    Hidden files and folders (``.dvc``, ``.DS_Store``) are left out.
    """
    root = Path(folder)
    lines = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            lines.append(f"{relative.as_posix()}\t{file_sha256(path)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(lines)


def dataset_fingerprint(
    name: str, data_dir: str | os.PathLike[str] | None = None, path: str | None = None
) -> dict[str, Any]:
    """The identity of the data a run read: a registered dataset by name, or a folder.

    Args:
        name: a name from `dlcc data list`, or any label when ``path`` is given.
        data_dir: the data root (default: $DLCC_DATA_DIR, else ~/.cache/dlcc).
        path: a folder of the user's own files (``image_masks``); hashed instead.

    Returns ``{"name", "sha256", "files", "folder"}``; ``sha256`` is None (with a
    ``"note"``) when the dataset is generated in code (``digits``, the synthetic ECG) or
    its folder is not found. Hashing reads every byte: about a second per 500 MB.
    """
    from dlcc.data.paths import find_dataset_folder, resolve_data_dir
    from dlcc.data.registry import dataset_names, get_spec

    folder: Path | None = None
    if path is not None:
        folder = Path(path)
    elif name in dataset_names():
        spec = get_spec(name)
        if spec.files:
            folder = find_dataset_folder(spec, resolve_data_dir(data_dir))
        else:
            return _unhashed(name, "generated in code: its settings identify it")
    else:
        return _unhashed(name, "generated in code: its settings identify it")
    if folder is None or not folder.is_dir():
        return _unhashed(name, "its folder was not found")
    digest, count = folder_sha256(folder)
    return {"name": name, "sha256": digest, "files": count, "folder": str(folder.resolve())}


def _unhashed(name: str, note: str) -> dict[str, Any]:
    return {"name": name, "sha256": None, "files": 0, "folder": None, "note": note}


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, like ``pip freeze``, sorted by name."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def hardware() -> dict[str, Any]:
    """The machine: CPU model, cores this process may use, memory in GB, GPU names."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count()
    memory_gb = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpus: list[str] = []
    try:
        import sys

        torch = sys.modules.get("torch")  # only when the run already imported it
        if torch is not None and torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken driver must not stop a run's record
        gpus = []
    return {"cpu": cpu, "cores": cores, "memory_gb": memory_gb, "gpus": gpus}
