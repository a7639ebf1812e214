"""The model registry: a tracked run's model under a name and a version, and back.

    register(run_dir, name)        -> (name, version): a new version of registered model `name`
    resolve(name, version)         -> a local folder holding that version's MLflow model
    registered_run(name, version)  -> a local run directory of that version (weights only)

A registered torch model's folder holds, beside MLflow's pickled model, the run's files
that rebuild it without unpickling code: ``dlcc_run/`` = config.yaml, metrics.json,
run.json and checkpoints/best.pt (a weights-only checkpoint). `dlcc serve` and `dlcc app`
serve ``models:/NAME/VERSION`` (or ``models:/NAME/latest``) from it through the same
export path as a run directory.
"""

from __future__ import annotations

import re
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
        _log_run_files(client, run_id, run_dir)
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(name, source, run_id=run_id)
    except Exception as error:
        raise TrackingError(
            f"could not register {run_dir} as {name!r}: {one_line(error)}"
        ) from None
    return name, int(version.version)


RUN_FILES = "dlcc_run"  # inside the registered model folder: a weights-only run directory
RUN_FILE_NAMES = ("config.yaml", "metrics.json", "run.json", "history.json")
MODEL_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>[0-9]+|latest)$")


def _log_run_files(client, run_id: str, run_dir: Path) -> None:
    """Upload the files that rebuild the model without unpickling into ``model/dlcc_run``
    (once per MLflow run; a torch run with checkpoints/best.pt only)."""
    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        return
    present = {item.path for item in client.list_artifacts(run_id, f"model/{RUN_FILES}")}
    if f"model/{RUN_FILES}/checkpoints" in present:
        return
    for file_name in RUN_FILE_NAMES:
        if (run_dir / file_name).is_file():
            client.log_artifact(run_id, str(run_dir / file_name), f"model/{RUN_FILES}")
    client.log_artifact(run_id, str(best), f"model/{RUN_FILES}/checkpoints")


def parse_model_uri(text: str) -> tuple[str, str] | None:
    """'models:/NAME/VERSION' or 'models:/NAME/latest' -> (NAME, VERSION); None for any
    text that does not start with 'models:/'; a TrackingError for a malformed one."""
    if not text.startswith("models:/"):
        return None
    match = MODEL_URI.match(text)
    if match is None:
        raise TrackingError(
            f"{text!r} is not a registered model URI: expected models:/NAME/VERSION (a "
            "number) or models:/NAME/latest"
        )
    return match["name"], match["version"]


def registered_version(name: str, version: int | str, *, uri: str) -> tuple[int, str]:
    """(the version number, its MLflow run id) of `name` `version` ('latest': the newest).

    An unknown name or version is a TrackingError that lists what the store holds."""
    client = store.client(uri)
    try:
        names = sorted(m.name for m in client.search_registered_models())
        versions = (
            sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            if name in names
            else []
        )
    except Exception as error:
        raise TrackingError(
            f"could not read the model registry of {uri}: {one_line(error)}"
        ) from None
    if name not in names:
        held = ", ".join(names) if names else "none"
        raise TrackingError(
            f"no registered model named {name!r} in {uri} (registered models: {held}); "
            "register one with `dlcc track register RUN_DIR --name NAME`"
        )
    wanted = max(versions) if str(version) == "latest" else int(version)
    if wanted not in versions:
        raise TrackingError(
            f"registered model {name!r} has no version {version} in {uri} (versions: "
            f"{', '.join(map(str, versions))}); pass one of them, or latest"
        )
    return wanted, client.get_model_version(name, str(wanted)).run_id


def registered_run(
    name: str, version: int | str, *, uri: str, dst: str | Path | None = None
) -> tuple[Path, dict]:
    """(a local run directory, facts) of registered model `name` `version` (or 'latest').

    The run directory is the model folder's ``dlcc_run`` (in place for a local store,
    downloaded from a server). A version registered before the folder held it falls back
    to the run directory it was trained in, when that still exists here. Facts:
    {"name", "version", "run_id", "uri"}."""
    number, run_id = registered_version(name, version, uri=uri)
    facts = {"name": name, "version": number, "run_id": run_id, "uri": uri}
    folder = resolve(name, number, uri=uri, dst=dst)
    if (folder / RUN_FILES / "config.yaml").is_file():
        return folder / RUN_FILES, facts
    tags = store.client(uri).get_run(run_id).data.tags
    trained_in = Path(tags.get("dlcc.run_dir", ""))
    if tags.get("dlcc.run_dir") and (trained_in / "metrics.json").is_file():
        return trained_in, facts
    raise TrackingError(
        f"registered model {name!r} version {number} holds no weights-only run files "
        f"({RUN_FILES}/ in its folder) and its run directory {trained_in or '(unknown)'} is "
        "not here; register the run again with `dlcc track register RUN_DIR --name "
        f"{name}` (a NumPy run cannot be served)"
    )


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
