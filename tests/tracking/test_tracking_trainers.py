"""Both trainers track into a real MLflow SQLite store by default; read back with MlflowClient."""

from __future__ import annotations

import json

import pytest
import yaml
from tracking_helpers import client_for, free_port

from dlcc.cli import main
from dlcc.training.logging import flatten


def the_run(runs, name="a"):
    state = json.loads((runs / name / "tracking.json").read_text())
    client = client_for(state["uri"])
    return client, client.get_run(state["run_id"]), state


def test_a_torch_run_logs_its_recipe_metrics_tags_files_and_model(tracked, recipe, capsys):
    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    client, run, state = the_run(tracked)
    assert state["uri"] == f"sqlite:///{tracked / 'mlflow.db'}"
    assert state["experiment"] == "tiny"  # the recipe's name
    assert client.get_experiment(run.info.experiment_id).name == "tiny"
    assert run.info.status == "FINISHED"
    # parameters: the resolved recipe (config.yaml), flattened
    settings = yaml.safe_load((tracked / "a" / "config.yaml").read_text())
    settings.pop("kind")
    flat = flatten(settings)
    assert set(run.data.params) == set(flat)
    assert run.data.params["optim.lr"] == "0.05"
    assert run.data.params["data.dataset"] == "digits"
    assert run.data.params["model.options.hidden"] == "[32]"
    assert run.data.params["train.deterministic"] == "true"
    # metrics: every history.json column, step = epoch, each step once
    columns = json.loads((tracked / "a" / "history.json").read_text())["columns"]
    for name, values in columns.items():
        if name == "epoch":
            continue
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert [step for step, _ in logged] == columns["epoch"], name
        assert [value for _, value in logged] == pytest.approx(values), name
    final = json.loads((tracked / "a" / "metrics.json").read_text())
    test_accuracy = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert [(m.step, m.value) for m in test_accuracy] == [
        (2, pytest.approx(final["test_accuracy"]))
    ]
    # tags: code, data, versions, machine
    tags = run.data.tags
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] in ("True", "False")
    assert tags["dataset.name"] == "digits"
    assert "dataset.sha256" not in tags and "generated" in tags["dataset.note"]
    assert tags["version.torch"].startswith("2.") and tags["version.mlflow"]
    assert tags["device"] == "cpu"
    # files, and the model with its signature
    files = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"history.png", "metrics.json", "config.yaml", "history.json", "run.json"} <= files
    assert {"model", "packages.txt"} <= files
    from mlflow.models import Model

    model = Model.load(client.download_artifacts(run.info.run_id, "model", str(tracked.parent)))
    inputs = json.loads(model.signature.to_dict()["inputs"])[0]["tensor-spec"]
    assert inputs["shape"] == [-1, 1, 8, 8] and inputs["dtype"] == "float32"
    outputs = json.loads(model.signature.to_dict()["outputs"])[0]["tensor-spec"]
    assert outputs["shape"] == [-1, 10]
    assert "warning" not in capsys.readouterr().err


def test_a_numpy_run_logs_its_settings_history_and_checkpoint(tracked):
    code = main(["numpy", "train", "--model", "mlp", "--epochs", "2", "--out", "runs/n"])
    assert code == 0
    client, run, state = the_run(tracked, "n")
    assert state["experiment"] == "numpy" and run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] and run.data.params["data.dataset"] == "digits"
    columns = json.loads((tracked / "n" / "history.json").read_text())["columns"]
    logged = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in logged] == columns["epoch"] == [1, 2]
    assert [m.value for m in logged] == pytest.approx(columns["val_loss"])
    assert run.data.tags["dlcc.kind"] == "numpy" and run.data.tags["dataset.name"] == "digits"
    model_files = {item.path for item in client.list_artifacts(run.info.run_id, "model")}
    assert model_files == {"model/best.npz", "model/README.txt"}


def test_no_track_and_dlcc_track_0_leave_the_store_alone(tracked, recipe, monkeypatch):
    assert main(["train", str(recipe), "--out", "runs/a", "--no-track"]) == 0
    monkeypatch.setenv("DLCC_TRACK", "0")
    assert main(["numpy", "train", "--model", "mlp", "--epochs", "1", "--out", "runs/n"]) == 0
    assert not (tracked / "a" / "tracking.json").exists()
    assert not (tracked / "n" / "tracking.json").exists()
    experiments = client_for(f"sqlite:///{tracked / 'mlflow.db'}").search_experiments()
    assert [experiment.name for experiment in experiments] == ["Default"]


def test_mlflow_tracking_uri_names_another_store(tracked, recipe, monkeypatch, empty_db):
    import shutil

    other = tracked.parent / "elsewhere" / "other.db"
    other.parent.mkdir()
    shutil.copy(empty_db, other)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    assert main(["train", str(recipe), "--out", "runs/a", "--experiment", "mine"]) == 0
    client, run, state = the_run(tracked)
    assert state["uri"] == f"sqlite:///{other}" and state["experiment"] == "mine"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location.startswith((other.parent / "mlartifacts").as_uri())
    assert not (tracked / "mlartifacts").exists()


def test_an_unreachable_server_is_one_warning_and_training_goes_on(
    tracked, recipe, monkeypatch, capsys
):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    assert (tracked / "a" / "metrics.json").is_file()  # the run finished
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "dlcc: warning" in line]
    assert len(warnings) == 1, err
    assert uri in warnings[0] and "dlcc track sync runs/a" in warnings[0]
    assert "Traceback" not in err
    state = json.loads((tracked / "a" / "tracking.json").read_text())
    assert state["uri"] == uri and state["online"] is False and state["run_id"] is None
    assert "Connection" in state["error"] or "connect" in state["error"].lower()


def test_a_resumed_run_continues_the_same_mlflow_run(tracked, recipe, monkeypatch):
    import dlcc.training.loop as loop

    real = loop.write_history
    calls = []

    def write_then_stop(run, history):
        real(run, history)
        calls.append(len(history))
        if len(calls) == 1:
            raise KeyboardInterrupt  # stopped after the first epoch

    monkeypatch.setattr(loop, "write_history", write_then_stop)
    recipe_text = yaml.safe_load(recipe.read_text())
    recipe_text["train"]["epochs"] = 3
    recipe.write_text(yaml.safe_dump(recipe_text))
    assert main(["train", str(recipe), "--out", "runs/a"]) == 130
    first = json.loads((tracked / "a" / "tracking.json").read_text())
    client = client_for(first["uri"])
    assert client.get_run(first["run_id"]).info.status == "FAILED"
    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    client, run, state = the_run(tracked)
    assert state["run_id"] == first["run_id"] and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3]
    assert len(client.search_runs([run.info.experiment_id])) == 1
