"""A real MLflow server on loopback, stopped in the middle of a run: nothing is lost, and
`dlcc track sync` uploads every missing step exactly once, however often it runs."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml
from tracking_helpers import client_for, free_port, mlflow_server, wait_for_http

from dlcc.cli import main
from processes import stop_process

EPOCHS = 5
STOP_AFTER = 2  # the server is stopped once epoch 2 is in history.json


def wait_for_upload(state_file, metric: str, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(state_file.read_text())["uploaded"].get(metric, 0) >= step:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{metric} step {step} was not uploaded within {timeout} s")


@pytest.mark.slow
def test_server_down_mid_run_then_sync_twice_uploads_each_step_once(
    tracked, recipe, tmp_path, monkeypatch, empty_db, capsys
):
    import dlcc.training.loop as loop

    db, artifacts, log = tmp_path / "server.db", tmp_path / "server-artifacts", tmp_path / "log"
    shutil.copy(empty_db, db)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    settings = yaml.safe_load(recipe.read_text())
    settings["train"]["epochs"] = EPOCHS
    recipe.write_text(yaml.safe_dump(settings))

    server = mlflow_server(db, artifacts, port, log)
    try:
        wait_for_http(f"{uri}/health", server)
        real = loop.write_history

        def write_then_maybe_stop_the_server(run, history):
            real(run, history)
            if len(history) == STOP_AFTER:
                # the logger sends from its own thread: let it upload the epochs before this
                # one (so the server goes down mid-run, not before the first upload)
                wait_for_upload(tracked / "a" / "tracking.json", "train_loss", STOP_AFTER - 1)
                stop_process(server)

        monkeypatch.setattr(loop, "write_history", write_then_maybe_stop_the_server)
        assert main(["train", str(recipe), "--out", "runs/a"]) == 0  # training did not stop
        assert server.poll() is not None
        err = capsys.readouterr().err
        assert err.count("dlcc: warning") == 1 and "dlcc track sync runs/a" in err
        state = json.loads((tracked / "a" / "tracking.json").read_text())
        # epoch 2 was written to history.json, then the server stopped, then it was logged
        assert state["online"] is False and state["uploaded"]["train_loss"] == STOP_AFTER - 1
        history = json.loads((tracked / "a" / "history.json").read_text())["columns"]
        assert history["epoch"] == list(range(1, EPOCHS + 1))  # the run directory has it all

        server = mlflow_server(db, artifacts, port, log)  # the server is back
        wait_for_http(f"{uri}/health", server)
        assert main(["track", "sync", "runs/a"]) == 0
        first = capsys.readouterr().out
        assert main(["track", "sync", "runs/a"]) == 0
        second = capsys.readouterr().out
        assert " 0 metric steps" in second and " 0 metric steps" not in first

        client = client_for(uri)
        run = client.get_run(state["run_id"])
        assert run.info.status == "FINISHED"
        for name, values in history.items():
            if name == "epoch":
                continue
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert sorted(steps) == history["epoch"], name  # every step, none doubled
            logged = sorted(
                (m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)
            )
            assert [v for _, v in logged] == pytest.approx(values), name
        files = {item.path for item in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "history.png", "model"} <= files
        assert len(client.search_runs([run.info.experiment_id])) == 1
    finally:
        stop_process(server)


def test_sync_of_an_untracked_run_creates_its_mlflow_run_once(tracked, recipe, capsys):
    assert main(["train", str(recipe), "--out", "runs/a", "--no-track"]) == 0
    assert main(["track", "sync", "runs/a", "--experiment", "later"]) == 0
    assert main(["track", "sync", "runs/a"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "0 metric steps" in out[-1] and "0 files" in out[-1]
    state = json.loads((tracked / "a" / "tracking.json").read_text())
    client = client_for(state["uri"])
    runs = client.search_runs([state["experiment_id"]])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert client.get_experiment(state["experiment_id"]).name == "later"
    steps = [m.step for m in client.get_metric_history(state["run_id"], "val_loss")]
    assert steps == [1, 2]


def test_sync_to_an_unreachable_store_is_one_line_and_exit_2(tracked, recipe, capsys):
    assert main(["train", str(recipe), "--out", "runs/a", "--no-track"]) == 0
    uri = f"http://127.0.0.1:{free_port()}"
    assert main(["track", "sync", "runs/a", "--uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and uri in err[0] and "dlcc track sync runs/a" in err[0]


def test_sync_of_a_folder_that_is_not_a_run_is_one_line(tracked, capsys):
    assert main(["track", "sync", "runs"]) == 2
    assert "not a run directory" in capsys.readouterr().err
