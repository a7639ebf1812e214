"""Experiment tracking: MLflow behind the trainers' `MetricsLogger` interface.

Every `dlcc train` and `dlcc numpy train` run is tracked unless ``--no-track`` is given or
``DLCC_TRACK=0`` is set. The run directory stays the source of truth: the tracker copies
what the trainer writes there into an MLflow store, and ``dlcc track sync RUN_DIR``
uploads whatever the store is missing (exactly once), e.g. after the server was down.

- `store`: which store (``MLFLOW_TRACKING_URI``, else ``sqlite:///<root>/mlflow.db``);
- `mlflow_logger.MlflowLogger`: the live logger the torch loop drives;
- `sync`: the run directory -> the store, idempotent; `tracking.json` in the run directory;
- `registry`: register a run's model, and `resolve(name, version)` to a local folder;
- `compare`: a terminal table and chart of several runs;
- `commands`: ``dlcc track ui | sync | compare | register``.

Importing this package is cheap: mlflow is imported inside the functions that use it.
"""

from __future__ import annotations

import os

OFF_VALUES = ("0", "false", "no", "off")


def tracking_enabled(no_track: bool = False) -> bool:
    """False with ``--no-track`` (`no_track`) or when $DLCC_TRACK is 0/false/no/off."""
    if no_track:
        return False
    return os.environ.get("DLCC_TRACK", "1").strip().lower() not in OFF_VALUES


def tracker_for(
    run_dir,
    *,
    experiment: str,
    no_track: bool = False,
    kind: str = "torch",
    uri: str | None = None,
    tags: dict | None = None,
):
    """The logger of a torch run in `run_dir`: MLflow, plus Weights & Biases when
    DLCC_WANDB=1 (`wandb_logger`); None when tracking is off. `uri` and `tags` go to
    `MlflowLogger` (a sweep's trials: the sweep's store, the parent run's id)."""
    if not tracking_enabled(no_track):
        return None
    from dlcc.tracking.mlflow_logger import MlflowLogger
    from dlcc.tracking.wandb_logger import WandbLogger, wandb_enabled

    mlflow_logger = MlflowLogger(run_dir, experiment=experiment, kind=kind, uri=uri, tags=tags)
    if not wandb_enabled():
        return mlflow_logger
    return Trackers(mlflow_logger, WandbLogger(run_dir, experiment=experiment))


class Trackers:
    """Several tracking backends behind one `MetricsLogger` (each call goes to each)."""

    def __init__(self, *loggers):
        self.loggers = loggers

    def log_params(self, params: dict) -> None:
        for logger in self.loggers:
            logger.log_params(params)

    def log_metrics(self, metrics, step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_artifact(self, path) -> None:
        for logger in self.loggers:
            logger.log_artifact(path)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

    def bind_model(self, model, data, device=None) -> None:
        for logger in self.loggers:
            if hasattr(logger, "bind_model"):
                logger.bind_model(model, data, device)


def track_finished_run(run_dir, *, experiment: str, no_track: bool = False) -> dict | None:
    """Upload a run the NumPy trainer has just written (its loop has no per-epoch hook, and
    `dlcc.numpy_nn` stays NumPy-only): `dlcc track sync`, with a warning, not an error,
    when the store cannot be reached. Returns what was sent, or None."""
    if not tracking_enabled(no_track):
        return None
    from dlcc.tracking.sync import TrackingError, sync_run, warn

    try:
        return sync_run(run_dir, experiment=experiment)
    except TrackingError as error:
        warn(f"experiment tracking: {error}")
        return None
