"""Why the study is not in mlflow.db: Optuna and MLflow cannot share one SQLite file (both
keep their schema revision in `alembic_version`), in either order. The sweep keeps its
study in optuna.db beside mlflow.db; `import dlcc` and `dlcc --help` stay light."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from dlcc.sweep.study import storage_url
from dlcc.tracking.store import default_uri

pytest.importorskip("mlflow")


def test_optuna_refuses_an_mlflow_database(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates and migrates it
    with pytest.raises(RuntimeError, match="no longer compatible with the table schema"):
        optuna.create_study(storage=uri, study_name="s")


def test_mlflow_refuses_an_optuna_database(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(storage=uri, study_name="s")
    with pytest.raises(Exception, match="Can't locate revision"):
        MlflowClient(tracking_uri=uri).search_experiments()


def test_the_study_sits_beside_the_mlflow_store_in_its_own_file(tmp_path):
    sweep_dir = tmp_path / "runs" / "sweeps" / "x"
    mlflow_db = default_uri(sweep_dir).removeprefix("sqlite:///")
    optuna_db = storage_url(sweep_dir).removeprefix("sqlite:///")
    assert mlflow_db == str(tmp_path / "runs" / "sweeps" / "mlflow.db")
    assert optuna_db == str(tmp_path / "runs" / "sweeps" / "optuna.db")


def test_import_dlcc_and_help_do_not_import_optuna_or_mlflow():
    code = (
        "import sys, dlcc, dlcc.cli, dlcc.sweep, dlcc.sweep.commands; dlcc.cli.build_parser(); "
        "print(sorted(m for m in ('optuna', 'mlflow') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
