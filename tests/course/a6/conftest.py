"""Assignment 6's shared runs: three NumPy MLP runs on the embedded digits, kept in `runs/`.

`first` and `again` have the same settings (a reproduction), `other` another learning rate
and seed. They are real runs (config.yaml, history.json and metrics.json of one-epoch
trainings, made by `a6_helpers.train_numpy_run` with the reference), kept as files because
a release's package has every assignment's training code stubbed, so nothing could train
them when a learner grades a starter. To make them again with the reference:
DLCC_UPDATE_A6_RUNS=1 pytest tests/course/a6 (then review the diff).

`store`: copies of `first` and `other` uploaded to a real MLflow SQLite store with
`dlcc.tracking.sync.sync_run`, the upload `dlcc numpy train` makes with tracking on; "db" is
that database's bytes, for a copy in the learner's process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

RUNS = Path(__file__).resolve().parent / "runs"
SETTINGS = {"first": {"lr": 3e-3, "seed": 0}, "again": {"lr": 3e-3, "seed": 0},
            "other": {"lr": 1e-2, "seed": 1}}  # fmt: skip
KEPT = ("config.yaml", "history.json", "metrics.json")


def _update(tmp: Path) -> None:
    from a6_helpers import train_numpy_run

    for name, settings in SETTINGS.items():
        trained = train_numpy_run(tmp / name, **settings)
        (RUNS / name).mkdir(parents=True, exist_ok=True)
        for file in KEPT:
            shutil.copyfile(trained / file, RUNS / name / file)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """{name: a copy of the run directory} (the copies may be written to: tracking.json)."""
    root = tmp_path_factory.mktemp("a6-runs")
    if os.environ.get("DLCC_UPDATE_A6_RUNS") == "1":
        _update(root / "trained")
    copies = {}
    for name in SETTINGS:
        copies[name] = root / name
        copies[name].mkdir()
        for file in KEPT:
            shutil.copyfile(RUNS / name / file, copies[name] / file)
    return copies


@pytest.fixture(scope="session")
def store(runs, tmp_path_factory) -> dict:
    from dlcc.tracking.sync import sync_run

    db = tmp_path_factory.mktemp("a6-store") / "mlflow.db"
    uri = f"sqlite:///{db}"
    ids = {
        name: sync_run(runs[name], uri=uri, experiment="a6")["run_id"]
        for name in ("first", "other")
    }
    return {"dirs": runs, "uri": uri, "ids": ids, "db": db.read_bytes()}
