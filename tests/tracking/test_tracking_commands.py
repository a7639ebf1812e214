"""`dlcc track ui`, `compare` and `register`, and `registry.resolve`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from tracking_helpers import free_port, start_process, wait_for_http

from dlcc.cli import main
from processes import stop_process


@pytest.mark.slow
def test_track_ui_serves_the_default_store_on_loopback(tracked, tmp_path):
    port = free_port()
    log = tmp_path / "ui.log"
    ui = start_process(
        [sys.executable, "-m", "dlcc", "track", "ui", "--runs", str(tracked), "--port", str(port)],
        log,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", ui)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
        assert f"MLflow UI: http://127.0.0.1:{port}" in log.read_text()
    finally:
        stop_process(ui)


def test_track_ui_without_the_runs_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["track", "ui", "--runs", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_compare_prints_a_table_and_a_chart_of_runs_and_run_ids(tracked, recipe, capsys):
    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    assert main(["train", str(recipe), "--out", "runs/b", "--set", "optim.lr=0.2"]) == 0
    run_id = json.loads((tracked / "b" / "tracking.json").read_text())["run_id"]
    capsys.readouterr()
    assert main(["track", "compare", "runs/a", run_id, "--metric", "val_loss"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["run", "epochs"] and "test_accuracy" in lines[0]
    assert lines[2].startswith("runs/a") and lines[3].startswith(f"b ({run_id[:8]})")
    assert "val_loss per epoch" in out and "* runs/a" in out and f"o b ({run_id[:8]})" in out
    final_a = json.loads((tracked / "a" / "metrics.json").read_text())
    assert f"{final_a['test_accuracy']:.4g}" in lines[2]
    # the settings that differ: the run directory's config.yaml against the store's params
    start = lines.index("settings that differ ([N]: the Nth run, in the table's order)")
    assert lines[start + 1].split() == ["setting", "[1]", "[2]"]
    end = lines.index("", start)
    rows = {line.split()[0]: line.split()[1:] for line in lines[start + 2 : end]}
    assert rows == {"optim.lr": ["0.05", "0.2"]}, rows


def test_compare_of_something_that_is_not_a_run_is_one_line(tracked, capsys):
    assert main(["track", "compare", "runs/nothing"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_register_then_resolve_gives_a_loadable_model_of_that_version(tracked, recipe, capsys):
    import mlflow.pytorch
    import torch

    from dlcc.tracking.registry import resolve

    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    assert main(["track", "register", "runs/a", "--name", "digits-mlp"]) == 0
    assert main(["track", "register", "runs/a", "--name", "digits-mlp"]) == 0
    out = capsys.readouterr().out
    assert "model 'digits-mlp' version 1" in out and "model 'digits-mlp' version 2" in out
    uri = f"sqlite:///{tracked / 'mlflow.db'}"
    folder = resolve("digits-mlp", 2, uri=uri)
    assert (folder / "MLmodel").is_file()
    model = mlflow.pytorch.load_model(str(folder))
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(Exception, match="no registered model 'digits-mlp' version 9"):
        resolve("digits-mlp", 9, uri=uri)


def test_register_an_unfinished_run_is_refused(tracked, capsys):
    (tracked / "x").mkdir()
    assert main(["track", "register", "runs/x", "--name", "m"]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_import_dlcc_and_help_do_not_import_mlflow():
    code = (
        "import sys, dlcc, dlcc.cli, dlcc.tracking.commands; dlcc.cli.build_parser(); "
        "print('mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr
