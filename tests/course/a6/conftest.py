"""Assignment 6's shared runs, trained once per session in the test process.

`runs`: three NumPy MLP runs on the embedded digits (one epoch each, a second or two):
`first`, `again` (the same settings: a reproduction) and `other` (another learning rate and
seed). `store`: `first` and `other` uploaded to a real MLflow SQLite store with
`dlcc.tracking.sync.sync_run`, the upload `dlcc numpy train` makes with tracking on; "db" is
that database's bytes, for a copy in the learner's process.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    from a6_helpers import train_numpy_run

    root = tmp_path_factory.mktemp("a6-runs")
    return {
        "first": train_numpy_run(root / "first", lr=3e-3, seed=0),
        "again": train_numpy_run(root / "again", lr=3e-3, seed=0),
        "other": train_numpy_run(root / "other", lr=1e-2, seed=1),
    }


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
