"""`MlflowLogger`: the torch loop's `MetricsLogger` for an MLflow store.

It never stops a training run. The first error talking to the store becomes one warning
(what failed, that the metrics are safe in the run directory, the command that uploads
them later), and the logger stops sending for that session; `close` tries once more, and
`dlcc track sync RUN_DIR` uploads the rest whenever the store is back.

It never slows one much either: every call hands its work (a snapshot of the values) to
one worker thread, which talks to the store in call order, so importing MLflow and opening
the database (seconds) overlap the first epoch instead of delaying it. `close` waits for
the worker to finish everything handed to it.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from dlcc.tracking import store
from dlcc.tracking.sync import (
    MODEL_DIR,
    flat_params,
    is_number,
    log_params,
    log_points,
    new_state,
    one_line,
    open_run,
    read_state,
    run_settings,
    run_tags,
    upload_missing,
    warn,
    write_state,
)


class MlflowLogger:
    """Logs a run's parameters, per-epoch metrics, files and model to MLflow.

    `run_dir`: the run directory (its tracking.json links it to the MLflow run, so that a
    resumed run continues the same MLflow run). `experiment`: the experiment's name.
    `uri`: the store (default: $MLFLOW_TRACKING_URI, else SQLite beside the run directory).
    `tags`: extra tags for a new MLflow run (a sweep's trial: ``mlflow.parentRunId``).
    Nothing is contacted before the first `log_params`, which the trainers call after the
    run directory has been accepted.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        experiment: str,
        uri: str | None = None,
        kind: str = "torch",
        tags: dict | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.uri = store.resolve_uri(self.run_dir, uri)
        self.experiment = experiment
        self.kind = kind
        self.tags = {key: str(value) for key, value in (tags or {}).items()}
        self.client = None
        self.run_id: str | None = None
        self.state: dict | None = None
        self.failed = False
        self.warned = False
        self.model = None
        self.data = None
        self.device: str | None = None
        self._tasks: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    # ---- MetricsLogger ---------------------------------------------------------------

    def log_params(self, params: dict) -> None:
        flat = flat_params(params)  # the values now, whenever the worker sends them

        def send():
            if self._start():
                self._try(lambda: log_params(self.client, self.run_id, flat))

        self._submit(send)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        points = {
            key: [(int(step), float(value))]
            for key, value in metrics.items()
            if key != "epoch" and is_number(value)
        }

        def send():
            if not self._start():
                return

            def points_and_state():
                log_points(self.client, self.run_id, points, self.state)
                write_state(self.run_dir, self.state)

            self._try(points_and_state)

        self._submit(send)

    def log_artifact(self, path: Path) -> None:
        """Files outside the run directory are sent now; the run directory's own files are
        sent by `close` once the run has finished (they change until then)."""
        path = Path(path)
        if path.resolve().parent == self.run_dir.resolve():
            return

        def send():
            if self._start():
                self._try(lambda: self.client.log_artifact(self.run_id, str(path)))

        self._submit(send)

    def close(self) -> None:
        """Finish the MLflow run (files, model, status) and wait for the worker."""
        if self._worker is None:  # nothing was ever logged: nothing to finish
            return
        finished = (self.run_dir / "metrics.json").is_file()
        self._submit(lambda: self._finish(finished))
        self._tasks.put(None)  # the worker's stop
        self._worker.join()
        self._worker = None

    # ---- the worker ------------------------------------------------------------------

    def _submit(self, action) -> None:
        """Run `action` on the logger's one worker thread, after those handed over before."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="dlcc-mlflow", daemon=True)
            self._worker.start()
        self._tasks.put(action)

    def _work(self) -> None:
        while (action := self._tasks.get()) is not None:
            try:
                action()
            except Exception as error:  # the actions guard themselves; this is a backstop
                self._fail(error)

    def _finish(self, finished: bool) -> None:
        if finished and self.model is not None and self.state is not None:
            self._save_model()
        if self.state is None:
            return
        if self.failed:  # one more try: the server may be back
            self.failed = False
            self.client = None
        if not self._start():
            return
        kind, settings = self.kind, {}
        try:
            kind, settings = run_settings(self.run_dir)
        except Exception:
            pass

        def finish():
            upload_missing(self.client, self.run_id, self.run_dir, self.state, kind, settings)
            if not finished:
                self.client.set_terminated(self.run_id, "FAILED")
            self.state.update(online=True, error=None)
            write_state(self.run_dir, self.state)

        self._try(finish)

    # ---- the torch loop hands these over ---------------------------------------------

    def bind_model(self, model, data, device=None) -> None:
        """The network (its best weights by `close`) and the data, for the model artifact
        and its signature (inferred from one input)."""
        self.model, self.data = model, data
        self.device = str(device) if device is not None else None

    # ---- internals -------------------------------------------------------------------

    def _start(self) -> bool:
        """Connect and open (or continue) the MLflow run once; False while offline."""
        if self.failed:
            return False
        if self.client is not None:
            return True
        if self.state is None:
            state = None
            try:
                state = read_state(self.run_dir)
            except Exception:
                state = None
            if state is None or state.get("uri") != self.uri:
                state = new_state(self.uri, self.experiment)
            self.state = state

        def connect():
            kind, settings = run_settings(self.run_dir)
            client, run_id = open_run(
                self.run_dir,
                self.state,
                lambda: {**run_tags(self.run_dir, kind, settings, self.device), **self.tags},
            )
            if self.state.get("finished") is False and self.state.get("run_id") == run_id:
                client.update_run(run_id, status="RUNNING")
            self.state.update(run_id=run_id, online=True, error=None)
            write_state(self.run_dir, self.state)
            self.client, self.run_id = client, run_id

        return self._try(connect)

    def _try(self, action) -> bool:
        try:
            action()
            return True
        except Exception as error:
            self._fail(error)
            return False

    def _fail(self, error: Exception) -> None:
        self.failed = True
        self.client = None
        if self.state is not None:
            self.state.update(online=False, error=one_line(error))
            try:
                write_state(self.run_dir, self.state)
            except OSError:
                pass
        if not self.warned:
            self.warned = True
            warn(
                f"experiment tracking: the MLflow store {self.uri} failed ({one_line(error)}). "
                f"Training goes on; every metric is safe in {self.run_dir}. Upload them later "
                f"with: dlcc track sync {self.run_dir}"
            )

    def _save_model(self) -> None:
        """RUN_DIR/mlflow_model: the network as an MLflow pytorch model with its signature,
        so that `dlcc track sync` can upload it even when the store is down now."""
        try:
            save_torch_model(self.model, self.data, self.run_dir / MODEL_DIR)
        except Exception as error:
            warn(f"experiment tracking: could not save the MLflow model ({one_line(error)})")


def save_torch_model(model, data, folder: Path) -> None:
    """Save `model` (on the CPU, in eval mode) with a signature from one input of `data`."""
    import copy
    import logging
    import shutil

    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    import dlcc

    store._quiet_mlflow_logs()
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # the pickle-format notice
    split = data.val if len(data.val) else data.train
    example = split[0][0]
    example = (
        example.unsqueeze(0)
        if isinstance(example, torch.Tensor)
        else torch.as_tensor(example).unsqueeze(0)
    )
    network = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        output = network(example)
    if isinstance(output, tuple):
        output = output[0]
    signature = infer_signature(example.numpy(), output.float().numpy())
    if folder.exists():
        shutil.rmtree(folder)
    mlflow.pytorch.save_model(
        network,
        str(folder),
        signature=signature,
        serialization_format="pickle",  # the whole module: loads with mlflow.pytorch
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"dlcc=={dlcc.__version__}"],
    )
