"""Tracking tests: tracking on, against real MLflow stores in tmp_path.

Creating an MLflow SQLite database runs its migrations (seconds), so one migrated empty
database is made per session and copied where each test's store should be.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tracking_helpers import RECIPE

pytest.importorskip("mlflow")


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracked(tmp_path, monkeypatch, empty_db) -> Path:
    """Tracking on, no MLFLOW_TRACKING_URI, and a migrated default store: runs/mlflow.db."""
    monkeypatch.setenv("DLCC_TRACK", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(empty_db, runs / "mlflow.db")
    return runs


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path
