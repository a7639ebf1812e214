"""MLflow: the sweep is a parent run, each trial a nested run (tag mlflow.parentRunId) in
the same store, tagged with its Optuna state; a pruned trial is KILLED and tagged PRUNED;
--resume continues the same parent run."""

from __future__ import annotations

import json
import shutil

import pytest
from sweep_helpers import prepared, write_yaml

from dlcc.sweep.commands import run_sweep

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory):
    """One migrated MLflow database (migrations cost seconds), copied per test."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.mark.slow
def test_trials_are_nested_runs_of_the_sweeps_parent_run(workdir, recipe, monkeypatch, empty_db):
    from mlflow.tracking import MlflowClient

    shutil.copy(empty_db, workdir / "store.db")
    uri = f"sqlite:///{workdir / 'store.db'}"
    monkeypatch.setenv("DLCC_TRACK", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    space = write_yaml(
        workdir / "space.yaml", {"optim.lr": {"type": "categorical", "choices": [0.2, 1.0e-7]}}
    )
    argv = [str(recipe), "--space", str(space), "--out", "sweeps/t", "--set", "train.epochs=2"]
    spec, study = prepared(*argv, "--trials", "2", "--startup-trials", "1")
    for lr in (0.2, 1.0e-7):  # the second is pruned after its first epoch
        study.enqueue_trial({"optim.lr": lr})
    run_sweep(spec, study)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")  # the recipe's name
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and len(runs) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["dlcc.kind"] == "sweep" and parent.info.run_name == "t"
    assert parent.data.metrics["best_val_accuracy"] == study.best_value
    assert parent.data.params["metric"] == "val_accuracy"
    files = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.json", "best.yaml", "optimization_history.png", "space.yaml"} <= files

    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    by_trial = {int(run.data.tags["sweep.trial"]): run for run in children}
    assert sorted(by_trial) == [0, 1]
    for number, run in by_trial.items():
        tracked = json.loads((workdir / f"sweeps/t/trial_{number:03d}/tracking.json").read_text())
        assert tracked["run_id"] == run.info.run_id  # the trial's own run directory's run
    complete, pruned = by_trial[0], by_trial[1]
    assert (complete.info.status, complete.data.tags["sweep.trial_state"]) == (
        "FINISHED",
        "COMPLETE",
    )
    assert (pruned.info.status, pruned.data.tags["sweep.trial_state"]) == ("KILLED", "PRUNED")
    # the pruned trial's epochs are in its run: one epoch of val_accuracy
    history = client.get_metric_history(pruned.info.run_id, "val_accuracy")
    assert [point.step for point in history] == [1]
    assert history[0].value == study.trials[1].intermediate_values[1]

    # --resume: the same parent run gets the new trial
    spec, study = prepared(*argv, "--trials", "3", "--startup-trials", "1", "--resume")
    run_sweep(spec, study)
    assert spec.parent_run_id == parent.info.run_id
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) == 3
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
