"""The metrics-logger interface, and its default backend: CSV and JSON in the run directory.

The training loop talks only to `MetricsLogger`. The experiment-tracking work adds an
MLflow backend behind the same four methods; `MultiLogger` fans out to several.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol

from dlcc.atomic import write_text_atomic


class MetricsLogger(Protocol):
    def log_params(self, params: dict) -> None:
        """The run's settings, once, flattened to ``section.key`` names."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Scalar metrics at `step` (the epoch for per-epoch metrics)."""

    def log_artifact(self, path: Path) -> None:
        """A file the run produced (plot, checkpoint, report)."""

    def close(self) -> None:
        """Flush and release; called once at the end, also after an error."""


class FileLogger:
    """Writes metrics.csv (one row per call, all columns) and params.json in `run_dir`.

    Each write rewrites the whole (small) file atomically, so a killed run leaves a
    complete file with every row logged so far.
    """

    def __init__(self, run_dir: str | Path, resume_rows: list[dict] | None = None):
        self.run_dir = Path(run_dir)
        self.rows: list[dict] = list(resume_rows or [])
        self.artifacts: list[str] = []

    def log_params(self, params: dict) -> None:
        text = json.dumps(flatten(params), indent=2, sort_keys=True) + "\n"
        write_text_atomic(self.run_dir / "params.json", text)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append({"step": step, **{key: float(value) for key, value in metrics.items()}})
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.run_dir / "metrics.csv", buffer.getvalue())

    def log_artifact(self, path: Path) -> None:
        self.artifacts.append(str(path))

    def close(self) -> None:
        pass


class MultiLogger:
    """Sends every call to each logger in turn."""

    def __init__(self, *loggers: MetricsLogger):
        self.loggers = loggers

    def log_params(self, params: dict) -> None:
        for logger in self.loggers:
            logger.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_artifact(self, path: Path) -> None:
        for logger in self.loggers:
            logger.log_artifact(path)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}; lists and scalars are kept as values."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
