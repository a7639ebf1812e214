"""Part 2: tracking and comparing runs (`dlcc.tracking.compare`). Two NumPy runs
(conftest.py) are uploaded to a real MLflow SQLite store; the learner's `run_from_store` reads
a copy of that store, and what it returns is checked against the MLflow client reading the
store here and against the run directories' own history.json and metrics.json. A store
written here with the client (steps logged out of order) checks the sorting;
`differing_params` is checked on settings written in the test, and `compare` end to end."""

from __future__ import annotations

import pytest
import yaml
from a6_helpers import history_curves, learner_store, read_json

from dlcc.tracking.compare import compare, differing_params, run_from_store


def client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@pytest.fixture(scope="module")
def there(store) -> str:
    """The store's copy in the learner's process: its URI."""
    return learner_store(store["db"])


@pytest.mark.parametrize("name", ["first", "other"])
def test_run_from_store_reads_the_params(store, there, name):
    run_id = store["ids"][name]
    expected = client(store["uri"]).get_run(run_id).data.params
    got = run_from_store(run_id, there)
    assert dict(got["params"]) == dict(expected)
    config = yaml.safe_load((store["dirs"][name] / "config.yaml").read_text())
    assert got["params"]["optim.lr"] == str(config["optim"]["lr"])


@pytest.mark.parametrize("name", ["first", "other"])
def test_run_from_store_reads_the_metric_histories_and_final_figures(store, there, name):
    run_id, run_dir = store["ids"][name], store["dirs"][name]
    got = run_from_store(run_id, there)
    curves = {key: [tuple(point) for point in values] for key, values in got["curves"].items()}
    expected = history_curves(run_dir)
    metrics = read_json(run_dir / "metrics.json")
    for key, value in metrics.items():  # the test figures are logged at the last epoch
        if key.startswith("test_") and isinstance(value, int | float) and key in curves:
            expected[key] = [(metrics["epochs"], value)]
    for key, points in expected.items():
        assert curves.get(key) == [(step, pytest.approx(v, rel=1e-12)) for step, v in points], key
    store_metrics = client(store["uri"]).get_run(run_id).data.metrics
    assert set(curves) == set(store_metrics)
    assert got["final"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], rel=1e-12)
    assert all(k.startswith("test_") or k == "monitor" for k in got["final"])
    assert got["final"]["monitor"] == client(store["uri"]).get_run(run_id).data.params.get(
        "task.monitor"
    )
    assert got["name"] == f"{name} ({run_id[:8]})"


def test_run_from_store_sorts_each_history_by_step(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = client(uri)
    experiment = store.create_experiment("a6-order")
    run = store.create_run(experiment, run_name="shuffled")
    for step, value in [(3, 0.3), (1, 0.9), (2, 0.5)]:
        store.log_metric(run.info.run_id, "val_loss", value, step=step)
    store.log_metric(run.info.run_id, "test_loss", 0.25, step=3)
    store.log_param(run.info.run_id, "optim.lr", "0.01")
    store.set_terminated(run.info.run_id)
    got = run_from_store(run.info.run_id, learner_store((tmp_path / "mlflow.db").read_bytes()))
    assert [tuple(p) for p in got["curves"]["val_loss"]] == [(1, 0.9), (2, 0.5), (3, 0.3)]
    assert dict(got["final"]) == {"test_loss": 0.25, "monitor": None}
    assert dict(got["params"]) == {"optim.lr": "0.01"}
    assert got["name"] == f"shuffled ({run.info.run_id[:8]})"


def test_differing_params_keeps_what_differs():
    runs = [
        {"params": {"optim.lr": "0.01", "train.epochs": "5", "model.name": "mlp"}},
        {"params": {"optim.lr": "0.001", "train.epochs": "5", "model.name": "mlp"}},
        {"params": {"optim.lr": "0.01", "train.epochs": "5", "data.augment": "[]",
                    "model.name": "mlp"}},
    ]  # fmt: skip
    got = differing_params(runs)
    assert list(got) == ["data.augment", "optim.lr"]
    assert [list(v) for v in got.values()] == [[None, None, "[]"], ["0.01", "0.001", "0.01"]]
    assert dict(differing_params(runs[:1])) == {}
    assert dict(differing_params([runs[0], runs[0]])) == {}


def test_compare_shows_the_settings_that_differ(store, there):
    text = compare([store["ids"]["first"], store["ids"]["other"]], uri=there)
    lines = text.splitlines()
    setting_rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    assert setting_rows["optim.lr"] == ["0.003", "0.01"], text
    assert setting_rows["train.seed"] == ["0", "1"], text
    assert "model.name" not in setting_rows, "a setting the runs share is not listed"
