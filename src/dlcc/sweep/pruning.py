"""Median pruning through the loop's `MetricsLogger` interface.

The torch loop calls its extra logger's ``log_metrics(row, step=epoch)`` once per epoch,
after the epoch's checkpoint and history.json are written. `PruningLogger` reports the
monitored validation value of that row to the Optuna trial and, when the pruner says so,
raises ``optuna.TrialPruned``. The exception leaves the loop through its ``finally`` (the
loggers are closed; the run directory holds every finished epoch, without metrics.json),
and the sweep records the trial as PRUNED in Optuna and in MLflow. The loop itself has no
sweep code.
"""

from __future__ import annotations

import math


class PruningLogger:
    """A `MetricsLogger` that reports `metric` at each epoch to `trial` (anything with
    Optuna's ``report(value, step)`` and ``should_prune()``) and stops a pruned trial."""

    def __init__(self, trial, metric: str):
        self.trial = trial
        self.metric = metric
        self.pruned_at: int | None = None

    def log_params(self, params: dict) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return  # no validation figure this epoch: nothing to judge
        self.trial.report(float(value), int(step))
        if self.trial.should_prune():
            import optuna

            self.pruned_at = int(step)
            raise optuna.TrialPruned(
                f"pruned at epoch {step}: {self.metric} {float(value):.4g} is worse than the "
                "median of the earlier trials at that epoch"
            )

    def log_artifact(self, path) -> None:
        pass

    def close(self) -> None:
        pass
