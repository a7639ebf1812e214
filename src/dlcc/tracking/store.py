"""Which MLflow store a run is tracked in, and where its artifacts go.

The default store is a SQLite database beside the run directories: for ``--out runs/x``
it is ``sqlite:///<abs>/runs/mlflow.db``, with the artifacts in ``runs/mlartifacts/``.
``MLFLOW_TRACKING_URI`` (a server ``http://host:port``, or another ``sqlite:///`` file)
replaces it. For a SQLite store named by the variable, the artifacts go in an
``mlartifacts`` folder beside the database file; a server decides for itself.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_NAME = "mlflow.db"
ARTIFACTS = "mlartifacts"


def default_uri(run_dir: str | Path) -> str:
    """``sqlite:///<parent of run_dir>/mlflow.db`` (absolute)."""
    root = Path(run_dir).resolve().parent
    return f"sqlite:///{root / DB_NAME}"


def resolve_uri(run_dir: str | Path, uri: str | None = None) -> str:
    """`uri`, else $MLFLOW_TRACKING_URI, else the default store of `run_dir`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(run_dir)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other scheme)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :])


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``mlartifacts/`` beside a SQLite file;
    None (the server's choice) for any other store."""
    path = sqlite_path(uri)
    if path is None:
        return None
    return (path.parent / ARTIFACTS).resolve().as_uri()


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def quiet_network_defaults() -> None:
    """Short HTTP timeouts and no retries, unless the user set them: a dead server must
    cost a training run a fraction of a second, not MLflow's default minutes of retries."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")


def client(uri: str):
    """An `MlflowClient` for `uri` (the SQLite file's folder is created first)."""
    quiet_network_defaults()
    path = sqlite_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient

    _quiet_mlflow_logs()

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _quiet_mlflow_logs() -> None:
    """MLflow's INFO lines (database migrations, "View run at ...") are noise in a
    training log; warnings and errors still show."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def experiment_id(client, name: str, uri: str) -> str:
    """The id of experiment `name`, created (with our artifact folder) when absent."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri))
