"""The run directory -> an MLflow run, exactly once; and ``tracking.json``, which links them.

``RUN_DIR/tracking.json`` (written atomically after every upload)::

    {"uri": "sqlite:///.../runs/mlflow.db", "experiment": "mnist_cnn",
     "experiment_id": "1", "run_id": "3b1f...", "online": true,
     "uploaded": {"train_loss": 6, ...},   # the last step uploaded, per metric
     "artifacts": ["history.png", ...], "finished": true, "error": null}

`upload_missing` asks the store which steps of each metric it holds and sends only the
others, so it can run any number of times (``dlcc track sync`` twice uploads nothing the
second time) and a request that timed out but did reach the server is not sent again.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError
from dlcc.tracking import store

STATE_FILE = "tracking.json"
MODEL_DIR = "mlflow_model"  # a torch run's MLflow model (with its signature), saved at the end
# Files of the run directory uploaded as artifacts once the run has finished.
ARTIFACT_SUFFIXES = (".png", ".json", ".yaml", ".txt", ".csv")
NOT_ARTIFACTS = (STATE_FILE,)
BATCH = 1000  # MLflow's limit on metrics per log_batch request
PARAM_BATCH = 100


class TrackingError(DlccError):
    """The tracking store could not be used (unreachable, refused, bad URI)."""


# ---- tracking.json -----------------------------------------------------------------------


def read_state(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise TrackingError(
            f"{path} is not valid JSON; delete it and run `dlcc track sync {run_dir}` to "
            "upload the run again as a new MLflow run"
        ) from None
    return state if isinstance(state, dict) else None


def write_state(run_dir: str | Path, state: dict) -> None:
    write_text_atomic(Path(run_dir) / STATE_FILE, json.dumps(state, indent=2) + "\n")


def new_state(uri: str, experiment: str) -> dict:
    return {
        "uri": uri,
        "experiment": experiment,
        "experiment_id": None,
        "run_id": None,
        "online": False,
        "uploaded": {},
        "artifacts": [],
        "finished": False,
        "error": None,
    }


# ---- what the run directory holds ---------------------------------------------------------


def param_value(value: Any) -> str:
    """A setting as MLflow stores it: text as is, anything else as JSON (true, null, [16, 32])."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:6000]  # MLflow's longest parameter value


def flat_params(settings: dict) -> dict[str, str]:
    from dlcc.training.logging import flatten

    return {key: param_value(value) for key, value in flatten(settings).items()}


def run_settings(run_dir: Path) -> tuple[str, dict]:
    """(kind, settings) from config.yaml, the settings as the trainer resolved them."""
    from dlcc.runs import read_run

    saved = read_run(run_dir)
    return saved.kind, saved.settings


def metric_rows(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]}: history.json's columns at step = epoch, and the
    test figures of metrics.json at the last epoch. Missing values (null) are left out."""
    rows: dict[str, list[tuple[int, float]]] = {}
    history_path = run_dir / "history.json"
    if not history_path.is_file():
        return rows
    columns = json.loads(history_path.read_text(encoding="utf-8")).get("columns", {})
    epochs = columns.get("epoch", [])
    for name, values in columns.items():
        if name == "epoch":
            continue
        pairs = zip(epochs, values, strict=False)
        points = [(int(step), float(value)) for step, value in pairs if is_number(value)]
        if points:
            rows[name] = points
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file() and epochs:
        final = json.loads(metrics_path.read_text(encoding="utf-8"))
        for name, value in final.items():
            if name.startswith("test_") and is_number(value):
                rows.setdefault(name, []).append((int(epochs[-1]), float(value)))
    return rows


def is_number(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def run_tags(run_dir: Path, kind: str, settings: dict, device: str | None = None) -> dict:
    """The run's provenance as MLflow tags: code, data, versions, machine."""
    import platform

    import dlcc
    from dlcc.runs.provenance import dataset_fingerprint, git_state, hardware, installed_packages

    data = settings.get("data", {}) if isinstance(settings.get("data"), dict) else {}
    dataset = data.get("dataset") or settings.get("dataset") or "unknown"
    path = data.get("images") or data.get("path")
    git = git_state(Path(dlcc.__file__).resolve().parent)
    fingerprint = dataset_fingerprint(str(dataset), data.get("data_dir"), path)
    packages = installed_packages()
    machine = hardware()
    if device is None:
        train = settings.get("train", {}) if isinstance(settings.get("train"), dict) else {}
        device = "cpu" if kind == "numpy" else str(train.get("device", "auto"))
    tags = {
        "mlflow.runName": run_dir.name,
        "dlcc.kind": kind,
        "dlcc.run_dir": str(run_dir.resolve()),
        "git.commit": git["commit"],
        "git.dirty": git["dirty"],
        "mlflow.source.git.commit": git["commit"],
        "dataset.name": dataset,
        "dataset.sha256": fingerprint.get("sha256"),
        "dataset.files": fingerprint.get("files"),
        "dataset.note": fingerprint.get("note"),
        "device": device,
        "hardware.cpu": machine.get("cpu"),
        "hardware.gpus": ", ".join(machine.get("gpus") or []) or "none",
        "version.python": platform.python_version(),
        "version.dlcc": dlcc.__version__,
    }
    for name in ("torch", "numpy", "mlflow", "mlflow-skinny"):
        if name in packages:
            tags[f"version.{name}"] = packages[name]
    return {key: str(value) for key, value in tags.items() if value is not None}


def packages_text() -> str:
    from dlcc.runs.provenance import installed_packages

    return "".join(f"{name}=={version}\n" for name, version in installed_packages().items())


# ---- talking to the store -----------------------------------------------------------------


def open_run(run_dir: Path, state: dict, tags_for) -> tuple[Any, str]:
    """(client, run_id): the run named in `state` when the store still has it, else a new
    one (tagged with `tags_for()`); `state` is updated (not written)."""
    client = store.client(state["uri"])
    run_id = state.get("run_id")
    if run_id:
        try:
            run = client.get_run(run_id)
            if run.info.lifecycle_stage != "deleted":
                return client, run_id
        except Exception as error:
            if not _is_not_found(error):
                raise
    experiment_id = store.experiment_id(client, state["experiment"], state["uri"])
    tags = dict(tags_for())
    run_name = tags.pop("mlflow.runName", None)
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    state.update(
        experiment_id=experiment_id,
        run_id=run.info.run_id,
        uploaded={},
        artifacts=[],
        finished=False,
        packages_logged=False,
    )
    return client, run.info.run_id


def _is_not_found(error: Exception) -> bool:
    code = getattr(error, "error_code", "")
    return "RESOURCE_DOES_NOT_EXIST" in str(code) or "not found" in str(error).lower()


def log_params(client, run_id: str, params: dict[str, str]) -> int:
    """Log the parameters the run does not have yet (a resumed run keeps its first values:
    the settings free to differ on resumption, such as the data folder, are not results)."""
    from mlflow.entities import Param

    have = client.get_run(run_id).data.params
    new = [Param(key, value) for key, value in params.items() if key not in have]
    for start in range(0, len(new), PARAM_BATCH):
        client.log_batch(run_id, params=new[start : start + PARAM_BATCH])
    return len(new)


def log_points(client, run_id: str, points: dict[str, list[tuple[int, float]]], state) -> int:
    """Send (step, value) points; `state["uploaded"]` records the last step per metric."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [
        Metric(key, value, now, step) for key, pairs in points.items() for step, value in pairs
    ]
    for start in range(0, len(batch), BATCH):
        client.log_batch(run_id, metrics=batch[start : start + BATCH])
    for key, pairs in points.items():
        if pairs:
            last = max(step for step, _ in pairs)
            state["uploaded"][key] = max(last, state["uploaded"].get(key, last))
    return len(batch)


def missing_points(client, run_id: str, rows: dict[str, list[tuple[int, float]]]) -> dict:
    """The points of `rows` whose (metric, step) the store does not hold."""
    missing = {}
    for key, pairs in rows.items():
        have = {metric.step for metric in client.get_metric_history(run_id, key)}
        todo = [(step, value) for step, value in pairs if step not in have]
        if todo:
            missing[key] = todo
    return missing


def upload_missing(client, run_id: str, run_dir: Path, state: dict, kind: str, settings) -> dict:
    """Everything of `run_dir` the store lacks: parameters, metric steps, and, once the
    run has finished, its files, model and FINISHED status. Returns what was sent."""
    sent = {"params": log_params(client, run_id, flat_params(settings)), "metrics": 0}
    sent["metrics"] = log_points(
        client, run_id, missing_points(client, run_id, metric_rows(run_dir)), state
    )
    if not state.get("packages_logged"):
        client.log_text(run_id, packages_text(), "packages.txt")
        state["packages_logged"] = True
    finished = (run_dir / "metrics.json").is_file()
    sent["artifacts"] = 0
    if finished and not state.get("finished"):
        for path in sorted(run_dir.iterdir()):
            if (
                path.is_file()
                and path.suffix in ARTIFACT_SUFFIXES
                and path.name not in NOT_ARTIFACTS
            ):
                client.log_artifact(run_id, str(path))
                sent["artifacts"] += 1
        sent["artifacts"] += log_model_files(client, run_id, run_dir, kind)
        state["artifacts"] = [path.name for path in artifact_files(run_dir)]
        client.set_terminated(run_id, "FINISHED")
        state["finished"] = True
    return sent


def artifact_files(run_dir: Path) -> list[Path]:
    """The run directory's own files that become artifacts (plots, JSON, config)."""
    return [
        path
        for path in sorted(run_dir.iterdir())
        if path.is_file() and path.suffix in ARTIFACT_SUFFIXES and path.name not in NOT_ARTIFACTS
    ]


NUMPY_MODEL_NOTE = """This is a dlcc NumPy run's model: best.npz holds the weights of the
epoch with the best validation figure (and last.npz, when present, the last epoch).
There is no MLflow pyfunc flavour for it: load it with dlcc, e.g.
    dlcc eval RUN_DIR            # evaluate it again
or in Python: dlcc.numpy_trainer.run.evaluate_numpy_run(dlcc.runs.read_run(RUN_DIR)).
The run's config.yaml (an artifact beside this folder) has the settings that rebuild it.
"""


def log_model_files(client, run_id: str, run_dir: Path, kind: str) -> int:
    """The model under the artifact path ``model``: a torch run's MLflow model folder (with
    its signature); a NumPy run's best checkpoint and a note on how to load it."""
    model_dir = run_dir / MODEL_DIR
    if model_dir.is_dir():
        client.log_artifacts(run_id, str(model_dir), "model")
        return 1
    best = run_dir / "checkpoints" / ("best.npz" if kind == "numpy" else "best.pt")
    if kind == "numpy" and best.is_file():
        client.log_artifact(run_id, str(best), "model")
        client.log_text(run_id, NUMPY_MODEL_NOTE, "model/README.txt")
        return 1
    return 0


def sync_run(run_dir: str | Path, *, uri: str | None = None, experiment: str | None = None) -> dict:
    """Upload what `run_dir` holds and its MLflow run lacks; the run is created if needed.

    The store is `uri`, else the one tracking.json names, else $MLFLOW_TRACKING_URI or the
    default. Raises TrackingError when the store cannot be reached. Returns
    {"uri", "run_id", "experiment", "params", "metrics", "artifacts"} (what was sent).
    """
    run_dir = Path(run_dir)
    kind, settings = run_settings(run_dir)
    state = read_state(run_dir)
    chosen = uri or (state or {}).get("uri") or store.resolve_uri(run_dir)
    if state is None or state.get("uri") != chosen:
        name = experiment or (state or {}).get("experiment") or default_experiment(run_dir, kind)
        state = new_state(chosen, name)
    try:
        client, run_id = open_run(run_dir, state, lambda: run_tags(run_dir, kind, settings))
        state["run_id"] = run_id
        sent = upload_missing(client, run_id, run_dir, state, kind, settings)
    except DlccError:
        raise
    except Exception as error:
        state["online"] = False
        state["error"] = one_line(error)
        write_state(run_dir, state)
        raise TrackingError(
            f"could not upload {run_dir} to {chosen}: {one_line(error)}. Nothing was lost: "
            f"the run directory is intact; start the server (or check the URI) and run "
            f"`dlcc track sync {run_dir}` again"
        ) from None
    state.update(online=True, error=None)
    write_state(run_dir, state)
    return {"uri": chosen, "run_id": run_id, "experiment": state["experiment"], **sent}


def default_experiment(run_dir: Path, kind: str) -> str:
    """``numpy`` for NumPy runs; for torch runs the recipe named in run.json's command."""
    if kind == "numpy":
        return "numpy"
    try:
        command = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["command"]
        recipe = command[command.index("train") + 1]
        return Path(recipe).stem
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "dlcc"


def one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first[:300]}"


def warn(message: str) -> None:
    print(f"dlcc: warning: {message}", file=sys.stderr, flush=True)
