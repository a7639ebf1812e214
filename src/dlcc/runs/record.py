"""run.json: the reproducibility record of a run, and the one function that builds it.

::

    {
      "kind": "torch",                       numpy | torch
      "command": ["dlcc", "train", ...],     the first session's command line (argv)
      "cwd": "/home/me/project",             where it was run
      "config": {...},                       the resolved settings, exactly config.yaml
      "seeds": {"seed": 0, "derived": {...}},  the recipe seed and what the trainer derives
      "git": {"commit": "3f2a...", "dirty": false},  the cwd's repository (None: not one)
      "dlcc_git": {"commit", "dirty"},       the repository dlcc itself was imported from
      "datasets": [{"name", "sha256", "files", "folder"}, ...],  the data the run read
      "packages": {"numpy": "2.1.3", ...},   pip freeze
      "hardware": {"cpu", "cores", "memory_gb", "gpus"},
      "started": "2026-...", "finished": "2026-..." (null until the run ends),
      "sessions": [{"command", "cwd", "started", "finished", "git"}, ...],
      "dlcc", "platform", "python", "environment", "torch_threads"
    }

A trainer calls `start_run_record` once the run directory is prepared (so a crashed run
still has its record) and `write_run_record` at the end, before metrics.json. A resumed
run keeps its first session's record and appends a session. Every write is atomic.
`dlcc reproduce RUN_DIR` (`dlcc.runs.reproduce`) reruns a run from this record.

Nothing here fails a run: a fact that cannot be read (no git, a data folder that moved,
a checksum that fails) is recorded as None with a note.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlcc.atomic import write_text_atomic
from dlcc.runs import provenance
from dlcc.runs.rundir import RunDir, RunDirError, strict_json

RECORD_VERSION = 2  # 1: the machine and versions only (no config, seeds, git, datasets)

# The seeds each trainer derives from the recipe's one seed (see the code named).
DERIVED_SEEDS = {
    "torch": {
        "data": "seed: the validation split, generated data (dlcc.training.data.load_data)",
        "init": "seed: random, numpy and torch global generators (training.setup.seed_everything)",
        "epoch_order": "seed * 1_000_003 + epoch (dlcc.training.data.epoch_permutation)",
        "augmentation": "seed * 7919 + epoch * 101 + rank (dlcc.training.loop._train)",
    },
    "numpy": {
        "data": "seed: the validation split (numpy_trainer.settings._load_data)",
        "init": "seed: dlcc.numpy_nn.manual_seed, before the model is built",
        "batch_order": "seed: the shuffling generator of dlcc.numpy_nn.train.fit",
        "samples": "seed: samples.txt of a char_lstm run (numpy.random.default_rng)",
    },
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_config(run: RunDir) -> dict | None:
    """config.yaml as a mapping, or None when it is absent or unreadable."""
    try:
        import yaml

        document = yaml.safe_load(run.config.read_text(encoding="utf-8"))
    except Exception:  # OSError, yaml.YAMLError: the record then says "config": null
        return None
    return document if isinstance(document, dict) else None


def run_seeds(kind: str, config: dict | None) -> dict[str, Any]:
    """The recipe's seed and the seeds the trainer derives from it."""
    train = (config or {}).get("train") or {}
    return {"seed": train.get("seed"), "derived": dict(DERIVED_SEEDS.get(kind, {}))}


def datasets_read(config: dict | None) -> list[dict[str, Any]]:
    """`provenance.dataset_fingerprint` of each dataset the run's data section reads.

    A registry name (mnist, ...), the user's own folders (``image_masks``: ``path`` or
    ``images`` and ``masks``), and for ``ecg_beats`` MIT-BIH record 100 when it is used.
    Never raises: a checksum that fails is recorded with a note.
    """
    data = (config or {}).get("data") or {}
    name, data_dir = data.get("dataset"), data.get("data_dir")
    if not isinstance(name, str):
        return []
    wanted: list[tuple[str, str | None]] = []  # (name, folder of the user's own files)
    if name == "image_masks":
        if data.get("path") is not None:
            wanted.append(("image_masks", str(data["path"])))
        for key in ("images", "masks"):
            if data.get(key) is not None:
                wanted.append((f"image_masks:{key}", str(data[key])))
    elif name == "ecg_beats":
        wanted.append(("ecg_beats", None))  # the synthetic records: settings identify them
        if (data.get("options") or {}).get("use_mitdb", True):
            from dlcc.data.paths import resolve_data_dir

            wanted.append(("mitdb", str(resolve_data_dir(data_dir) / "mitdb")))
    else:
        wanted.append((name, None))
    records = []
    for label, folder in wanted:
        try:
            records.append(provenance.dataset_fingerprint(label, data_dir, folder))
        except Exception as error:  # never fail a run on its record
            records.append(
                {"name": label, "sha256": None, "files": 0, "folder": folder,
                 "note": f"checksum failed: {type(error).__name__}: {error}"}
            )  # fmt: skip
    return records


def run_record(
    kind: str,
    command: list[str] | None = None,
    *,
    config: dict | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> dict:
    """The record of run.json (see the module docstring): the one function that builds it.

    `config` is the resolved config.yaml document; `cwd` defaults to the working directory.
    It uses `dlcc.environment.describe_environment` (Assignment 1, Part 0, has learners
    write it); while that is still a stub the record says so, and training goes on.
    """
    import dlcc

    cwd = str(Path(cwd if cwd is not None else os.getcwd()).resolve())
    command = list(command) if command is not None else list(sys.argv)
    git = provenance.git_state(cwd)
    started = _now()
    record: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "kind": kind,
        "command": command,
        "cwd": cwd,
        "config": config,
        "seeds": run_seeds(kind, config),
        "git": git,
        "dlcc_git": provenance.git_state(Path(dlcc.__file__).parent),  # dlcc's own source
        "datasets": datasets_read(config),
        "packages": provenance.installed_packages(),
        "hardware": provenance.hardware(),
        "started": started,
        "finished": None,
        "sessions": [{"command": command, "cwd": cwd, "started": started, "finished": None,
                      "git": git}],
        "dlcc": dlcc.__version__,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }  # fmt: skip
    try:
        from dlcc.environment import describe_environment

        record["environment"] = describe_environment()
    except NotImplementedError:
        record["environment"] = None
        record["environment_note"] = (
            "dlcc.environment.describe_environment is not written yet (Assignment 1, Part 0)"
        )
    if "torch" in sys.modules:
        record["torch_threads"] = sys.modules["torch"].get_num_threads()
    return record


def read_run_record(run: RunDir) -> dict | None:
    """run.json as a mapping; None when it is absent or not valid JSON."""
    try:
        record = json.loads(run.run_info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write(run: RunDir, record: dict) -> None:
    write_text_atomic(run.run_info, strict_json(record))


def start_run_record(run: RunDir, command: list[str] | None = None) -> dict:
    """Write run.json as a session starts (after `prepare_run_dir`); returns the record.

    A new run gets a full record. A resumed run keeps its first session's record and
    gains a session (its command, cwd, start time and git state).
    """
    record = read_run_record(run)
    if record is not None and record.get("config") is not None:
        cwd = str(Path.cwd().resolve())
        session = {
            "command": list(command) if command is not None else list(sys.argv),
            "cwd": cwd,
            "started": _now(),
            "finished": None,
            "git": provenance.git_state(cwd),
        }
        record.setdefault("sessions", []).append(session)
    else:
        record = run_record(run.kind, command, config=_read_config(run))
    _write(run, record)
    return record


def write_run_record(run: RunDir, command: list[str] | None = None) -> dict:
    """Complete run.json as the run finishes (before metrics.json); returns the record.

    Sets the finished time (of the run and of its last session). A run without a record
    from its start (one begun before run.json was written at the start) gets a full one.
    """
    record = read_run_record(run)
    if record is None or record.get("config") is None:
        record = run_record(run.kind, command, config=_read_config(run))
    finished = _now()
    record["finished"] = finished
    if record.get("sessions"):
        record["sessions"][-1]["finished"] = finished
    if "torch" in sys.modules:
        record["torch_threads"] = sys.modules["torch"].get_num_threads()
    _write(run, record)
    return record


def load_run_record(run: RunDir) -> dict:
    """run.json of a run to reproduce, or a one-line error saying what is missing."""
    if not run.run_info.is_file():
        raise RunDirError(
            f"{run.root} has no run.json, so there is no record of how it was run; "
            "train it again with the same command"
        )
    record = read_run_record(run)
    if record is None:
        raise RunDirError(f"{run.run_info} is not valid JSON: it was edited or damaged")
    if record.get("config") is None:
        raise RunDirError(
            f"{run.run_info} has no resolved config: it was written before run.json recorded "
            "one (dlcc before the reproducibility record), so the run cannot be replayed "
            "from it; train it again with the command it records "
            f"({' '.join(map(str, record.get('command') or [])) or 'unknown'})"
        )
    return record


__all__ = [
    "DERIVED_SEEDS",
    "RECORD_VERSION",
    "datasets_read",
    "load_run_record",
    "read_run_record",
    "run_record",
    "run_seeds",
    "start_run_record",
    "write_run_record",
]
