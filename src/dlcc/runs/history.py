"""Per-epoch history and the "best epoch" rule, shared by the NumPy and PyTorch trainers.

Standard library only: `dlcc.numpy_nn` uses these and must import with NumPy alone.

`History` is a table with one column per metric, declared when it is made (the task
declares its metrics; the trainer adds ``epoch``, ``lr`` and ``seconds``), and one row per
completed epoch. A value that does not exist (no validation split) is ``None``, which
`history.json` writes as ``null``: strict JSON, never ``NaN``.

`BestTracker` says which epoch is best. "Best" is declared, never implied: a monitored
column (``val_accuracy``) and a mode (``max`` or ``min``). It also holds the early-stopping
state, and round-trips through `state_dict` so a resumed run picks the same best epoch
and stops at the same epoch as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MODES = ("max", "min")


def _clean(value: Any) -> Any:
    """NaN and infinities become None; everything else is kept as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class History:
    """Columns of per-epoch values; ``history["val_loss"]`` or ``history.val_loss``.

    >>> history = History(["epoch", "train_loss", "val_loss"])
    >>> history.append(epoch=1, train_loss=0.9, val_loss=None)
    >>> history.val_loss
    [None]
    """

    def __init__(self, columns: list[str], best_epoch: int | None = None):
        if len(set(columns)) != len(columns):
            raise ValueError(f"History: duplicate column names in {columns}")
        self.columns: dict[str, list] = {name: [] for name in columns}
        self.best_epoch = best_epoch
        self.stopped_early = False

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def __getitem__(self, name: str) -> list:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(
                f"history has no column {name!r}; its columns are {', '.join(self.columns)}"
            ) from None

    def __getattr__(self, name: str) -> list:
        # Only called when normal lookup fails: columns read as attributes.
        columns = self.__dict__.get("columns")
        if columns is not None and name in columns:
            return columns[name]
        raise AttributeError(f"History has no attribute or column {name!r}")

    def append(self, **row: Any) -> None:
        """Add one epoch. Every declared column must be given (None for a missing value)."""
        unknown = set(row) - set(self.columns)
        missing = set(self.columns) - set(row)
        if unknown or missing:
            raise ValueError(
                f"History.append: expected exactly the columns {list(self.columns)}; "
                f"unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        for name, value in row.items():
            self.columns[name].append(_clean(value))

    def last(self) -> dict[str, Any]:
        """The latest epoch's row."""
        return {name: values[-1] for name, values in self.columns.items() if values}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {name: values[index] for name, values in self.columns.items()}
            for index in range(len(self))
        ]

    def to_dict(self) -> dict[str, Any]:
        """What `history.json` holds: the columns, then best_epoch and stopped_early."""
        return {
            "columns": {name: list(values) for name, values in self.columns.items()},
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise ValueError(
                "not a dlcc history: expected {'columns': {...}, 'best_epoch': ...}; "
                "it may come from an older dlcc"
            )
        history = cls(list(data["columns"]), data.get("best_epoch"))
        history.columns = {name: list(values) for name, values in data["columns"].items()}
        history.stopped_early = bool(data.get("stopped_early", False))
        return history


@dataclass
class BestTracker:
    """Which epoch is best for `monitor` under `mode`, and when to stop early.

    `update` is called once per epoch with the monitored value. A value of None (no
    validation split) makes every epoch the new best: the latest weights are the ones kept.
    With `patience`, `should_stop` turns True after that many epochs without improvement.
    """

    monitor: str
    mode: str
    patience: int | None = None
    min_delta: float = 0.0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = field(default=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode for {self.monitor!r} must be 'max' or 'min', got {self.mode!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")

    def is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        if self.mode == "max":
            return value > self.best_value + self.min_delta
        return value < self.best_value - self.min_delta

    def update(self, epoch: int, value: float | None) -> bool:
        """Record epoch `epoch`'s monitored value; returns True when it is the new best."""
        value = _clean(value)
        if value is None:
            self.best_epoch, self.epochs_without_improvement = epoch, 0
            return True
        if self.is_better(value):
            self.best_value, self.best_epoch = float(value), epoch
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        if self.patience is not None and self.epochs_without_improvement >= self.patience:
            self.stopped_early = True
        return False

    @property
    def should_stop(self) -> bool:
        return self.stopped_early

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "stopped_early": self.stopped_early,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("monitor", "mode"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"the checkpoint monitored {state[key]!r} but this run monitors "
                    f"{getattr(self, key)!r}; resume with the same settings"
                )
        self.best_value = state["best_value"]
        self.best_epoch = state["best_epoch"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.stopped_early = bool(state["stopped_early"])
