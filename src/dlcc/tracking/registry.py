"""The model registry: a tracked run's model under a name and a version, and back.

    register(run_dir, name)   -> (name, version): a new version of registered model `name`
    resolve(name, version)    -> a local folder holding that version's MLflow model

The deployment work serves registered models by name and version through `resolve`.
"""

from __future__ import annotations

from pathlib import Path

from dlcc.tracking import store
from dlcc.tracking.sync import TrackingError, one_line, sync_run


def register(run_dir: str | Path, name: str, *, uri: str | None = None) -> tuple[str, int]:
    """Register `run_dir`'s model (its MLflow run's ``model`` artifact) as a new version of
    `name`. The run is synced first, so its model is in the store; it must have finished."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise TrackingError(
            f"{run_dir} has not finished (no metrics.json): only a trained model can be "
            "registered; finish the run with the same training command first"
        )
    summary = sync_run(run_dir, uri=uri)
    client = store.client(summary["uri"])
    run_id = summary["run_id"]
    if not any(item.path == "model" for item in client.list_artifacts(run_id)):
        raise TrackingError(f"the MLflow run {run_id} of {run_dir} has no model artifact")
    try:
        from mlflow.exceptions import MlflowException

        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if "RESOURCE_ALREADY_EXISTS" not in str(error.error_code):
                raise
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(name, source, run_id=run_id)
    except Exception as error:
        raise TrackingError(
            f"could not register {run_dir} as {name!r}: {one_line(error)}"
        ) from None
    return name, int(version.version)


def resolve(
    name: str, version: int | str, *, uri: str | None = None, dst: str | Path | None = None
) -> Path:
    """The local folder of version `version` of registered model `name` (an MLflow model
    folder: MLmodel, data/, requirements.txt). A model in a local store is returned where it
    is; one on a server is downloaded into `dst` (default: a new temporary folder).

    The store is `uri`, else $MLFLOW_TRACKING_URI, else ``sqlite:///runs/mlflow.db``.
    """
    uri = uri or store.resolve_uri(Path("runs") / "x")
    client = store.client(uri)
    try:
        source = client.get_model_version_download_uri(name, str(version))
    except Exception as error:
        raise TrackingError(
            f"no registered model {name!r} version {version} in {uri} ({one_line(error)}); "
            "register one with `dlcc track register RUN_DIR --name NAME`"
        ) from None
    if source.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(source).path))
    import mlflow.artifacts

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=None if dst is None else str(dst), tracking_uri=uri
        )
    )
