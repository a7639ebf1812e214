"""`WandbLogger`: Weights & Biases as an optional second backend behind `MetricsLogger`.

Install it with ``pip install dlcc[wandb]``. It follows W&B's own settings: ``WANDB_MODE=
offline`` writes the run under ``RUN_DIR/wandb/`` (``wandb sync`` uploads it later), and
``WANDB_PROJECT`` names the project (default: the experiment). Like `MlflowLogger`, any
error becomes one warning and training goes on. Turn it on with ``DLCC_WANDB=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlcc.tracking.sync import flat_params, is_number, one_line, warn


def wandb_enabled() -> bool:
    return os.environ.get("DLCC_WANDB", "0").strip().lower() in ("1", "true", "yes", "on")


class WandbLogger:
    def __init__(self, run_dir: str | Path, *, experiment: str):
        self.run_dir = Path(run_dir)
        self.experiment = experiment
        self.run = None
        self.failed = False

    def _start(self) -> bool:
        if self.failed:
            return False
        if self.run is not None:
            return True
        try:
            import wandb

            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", self.experiment),
                name=self.run_dir.name,
                dir=str(self.run_dir),
                reinit="finish_previous",
            )
            return True
        except Exception as error:
            self._fail(error)
            return False

    def _fail(self, error: Exception) -> None:
        if not self.failed:
            warn(
                f"Weights & Biases: {one_line(error)}. Training goes on; the metrics are in "
                f"{self.run_dir}"
            )
        self.failed = True

    def log_params(self, params: dict) -> None:
        if self._start():
            try:
                self.run.config.update(flat_params(params), allow_val_change=True)
            except Exception as error:
                self._fail(error)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if not self._start():
            return
        values = {k: float(v) for k, v in metrics.items() if k != "epoch" and is_number(v)}
        try:
            self.run.log({**values, "epoch": step}, step=int(step))
        except Exception as error:
            self._fail(error)

    def log_artifact(self, path: Path) -> None:
        if not self._start():
            return
        try:
            self.run.save(str(path), base_path=str(Path(path).parent), policy="now")
        except Exception as error:
            self._fail(error)

    def close(self) -> None:
        if self.run is not None:
            try:
                self.run.finish()
            except Exception as error:
                self._fail(error)
            self.run = None
