"""The run directory: one layout and one set of file formats for every trainer.

::

    RUN_DIR/
      config.yaml        the resolved settings, tagged: {kind: numpy|torch, task: NAME, ...}
      history.json       {"columns": {"epoch": [...], "train_loss": [...], ...},
                          "best_epoch": 3, "stopped_early": false}
      metrics.json       the final figures (keys below); written last, it marks "finished"
      run.json           how it was run: command, config, seeds, git, data, packages,
                         machine (`dlcc.runs.record`)
      checkpoints/       last.EXT (every epoch, enough to resume exactly), best.EXT
      *.png, *.json      the task's report: curves, confusion matrix, overlays, ...

``EXT`` is ``npz`` for a NumPy run and ``pt`` for a torch run. `metrics.json` has the same
keys in both tracks (`METRIC_KEYS`), plus ``test_<metric>`` for each metric the task
reports. Missing values are ``null``.

Starting a trainer on a directory is one of three things (`prepare_run_dir`):
  - a new or empty directory: it is created and config.yaml is written;
  - an unfinished run with the same settings: the trainer resumes from checkpoints/last;
  - a finished run (metrics.json), a run with other settings, or a folder that is not a run:
    refused with a message, so no result is ever overwritten.

This module needs PyYAML only when it reads or writes config.yaml.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError
from dlcc.runs.history import History

KINDS = ("numpy", "torch")
CHECKPOINT_SUFFIX = {"numpy": ".npz", "torch": ".pt"}

# Every metrics.json has these keys, whichever trainer wrote it.
METRIC_KEYS = (
    "kind",  # numpy | torch
    "task",  # classification, segmentation, ...
    "monitor",  # the history column that chose "best", e.g. val_accuracy
    "mode",  # max | min
    "best_epoch",  # the epoch of checkpoints/best (1-based), null before any
    "best_value",  # the monitored value at best_epoch; null without a validation split
    "epochs",  # epochs completed
    "stopped_early",  # early stopping ended the run
    "test_checkpoint",  # which weights the test figures use: best | last
    "train_seconds",  # training + validation time summed over epochs, all sessions
    "train_seconds_this_session",  # the same, this invocation only (less after a resume)
    "parameters",  # trainable parameters
)


class RunDirError(DlccError):
    """A run directory that cannot be used for what was asked, with the reason."""


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory."""

    root: Path
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"run kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def run_info(self) -> Path:
        return self.root / "run.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """checkpoints/NAME.npz or .pt; `name` is ``last`` or ``best``."""
        return self.checkpoints / f"{name}{CHECKPOINT_SUFFIX[self.kind]}"

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()


# ---- config.yaml -------------------------------------------------------------------------


def _yaml():
    import yaml

    return yaml


def config_document(kind: str, task: str, settings: dict) -> dict:
    """What config.yaml holds: the tags first, then the trainer's own sections.

    The ``task`` tag is the task's name, or, when the settings have a ``task`` section
    (``{name: segmentation, monitor: ..., options: ...}``), that section, whose name it is.
    """
    if "kind" in settings:
        raise ValueError("settings may not use the reserved key 'kind'")
    section = settings.get("task")
    if isinstance(section, dict):
        if section.get("name") != task:
            raise ValueError(f"the task section names {section.get('name')!r}, not {task!r}")
        return {"kind": kind, **settings}
    if section is not None:
        raise ValueError("settings may not use the reserved key 'task' except as a section")
    return {"kind": kind, "task": task, **settings}


def task_name(document: dict) -> str:
    """The task a config.yaml document names (its ``task`` tag or ``task.name``)."""
    task = document.get("task", "classification")
    return str(task.get("name", "classification") if isinstance(task, dict) else task)


def write_config(run: RunDir, task: str, settings: dict) -> None:
    text = _yaml().safe_dump(config_document(run.kind, task, settings), sort_keys=False)
    write_text_atomic(run.config, text)


@dataclass(frozen=True)
class SavedRun:
    """What `read_run` finds in a run directory."""

    run: RunDir
    task: str
    settings: dict  # config.yaml without the kind tag (and without task, when it is a name)

    @property
    def kind(self) -> str:
        return self.run.kind


def read_run(run_dir: str | Path) -> SavedRun:
    """Read RUN_DIR/config.yaml and say which trainer wrote it; one-line errors otherwise."""
    root = Path(run_dir)
    path = root / "config.yaml"
    if not root.is_dir():
        raise RunDirError(f"{root} does not exist: pass the --out directory of a training run")
    if not path.is_file():
        raise RunDirError(
            f"{root} is not a run directory (no config.yaml): pass the --out directory of "
            "`dlcc train` or `dlcc numpy train`"
        )
    try:
        document = _yaml().safe_load(path.read_text(encoding="utf-8"))
    except Exception as error:  # yaml.YAMLError, UnicodeDecodeError
        raise RunDirError(
            f"{path} is not valid YAML ({type(error).__name__}); it was edited or damaged"
        ) from None
    if not isinstance(document, dict):
        raise RunDirError(f"{path} is not a run's config (expected a mapping)")
    kind = document.get("kind")
    if kind is None:
        if "batch_size" in document and isinstance(document.get("model"), str):
            raise RunDirError(
                f"{root} was written by an older `dlcc numpy train` (flat config.yaml, "
                "last.npz beside it), whose layout nothing reads any more; train it again "
                "with the same command to get a run directory that `dlcc eval` can use"
            )
        if "train" in document and "model" in document:
            raise RunDirError(
                f"{root} was written by an older `dlcc train` (config.yaml has no 'kind'); "
                "train it again with the same command"
            )
        raise RunDirError(f"{path} has no 'kind' (numpy or torch): it is not a dlcc run")
    if kind not in KINDS:
        raise RunDirError(f"{path}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    settings = {key: value for key, value in document.items() if key != "kind"}
    if not isinstance(settings.get("task"), dict):
        settings.pop("task", None)
    return SavedRun(RunDir(root, kind), task_name(document), settings)


def settings_differences(
    old: dict, new: dict, ignore: Iterable[str] = (), prefix: str = ""
) -> list[str]:
    """``a.b: old -> new`` for each leaf setting that differs; `ignore` holds dotted keys."""
    ignore = set(ignore)
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        dotted = f"{prefix}{key}"
        if dotted in ignore:
            continue
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += settings_differences(before, after, ignore, f"{dotted}.")
        elif before != after:
            changes.append(f"{dotted}: {before!r} -> {after!r}")
    return changes


def prepare_run_dir(
    run: RunDir, task: str, settings: dict, *, resume_free: Iterable[str] = ()
) -> Path | None:
    """Make `run` ready to train `settings`; returns the checkpoint to resume from, or None.

    `resume_free` names dotted settings that may change between a run and its resumption
    because they do not change the result (progress bars, data folder, workers).
    """
    root = run.root
    if run.config.is_file():
        saved = read_run(root)
        wanted = config_document(run.kind, task, settings)
        have = config_document(saved.kind, saved.task, saved.settings)
        differences = settings_differences(have, wanted, ignore=resume_free)
        if differences:
            shown = "; ".join(differences[:3]) + (" ..." if len(differences) > 3 else "")
            raise RunDirError(
                f"{root} holds a run with other settings ({shown}); choose a new --out "
                "directory, or repeat the original command to resume it"
            )
        if run.finished:
            raise RunDirError(
                f"{root} already holds a finished run (metrics.json); evaluate it with "
                f"`dlcc eval {root}`, or choose a new --out directory"
            )
        return run.last if run.last.is_file() else None
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} is a file, not a directory: choose another --out")
    if root.exists() and any(root.iterdir()):
        raise RunDirError(
            f"{root} exists and is not a dlcc run directory (no config.yaml); "
            "choose a new or empty --out directory"
        )
    root.mkdir(parents=True, exist_ok=True)
    write_config(run, task, settings)
    return None


# ---- history.json, metrics.json, run.json ------------------------------------------------


def strict_json(data: Any) -> str:
    """JSON with NaN and infinities as null (json.dumps would write the invalid NaN)."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(data), indent=2, allow_nan=False) + "\n"


def write_history(run: RunDir, history: History) -> None:
    write_text_atomic(run.history, strict_json(history.to_dict()))


def read_history(run: RunDir) -> History:
    try:
        return History.from_dict(json.loads(run.history.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunDirError(f"{run.history} is missing: the run has not finished an epoch") from None
    except ValueError as error:
        raise RunDirError(f"{run.history}: {error}") from None


def write_metrics(run: RunDir, metrics: dict) -> None:
    """Write metrics.json, checked to hold every key of METRIC_KEYS. Call it last."""
    missing = [key for key in METRIC_KEYS if key not in metrics]
    if missing:
        raise ValueError(f"metrics.json needs the keys {missing} (see dlcc.runs.METRIC_KEYS)")
    if metrics["kind"] != run.kind:
        raise ValueError(f"metrics kind {metrics['kind']!r} in a {run.kind} run directory")
    write_text_atomic(run.metrics, strict_json(metrics))


def read_metrics(run: RunDir) -> dict:
    if not run.metrics.is_file():
        raise RunDirError(f"{run.root} has not finished (no metrics.json)")
    return json.loads(run.metrics.read_text(encoding="utf-8"))
