"""`dlcc numpy train`, called as a function (and once as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from dlcc.cli import main
from dlcc.numpy_nn.commands import DEFAULTS, resolve_settings


def train(tmp_path, *flags):
    out = tmp_path / "run"
    status = main(["numpy", "train", "--out", str(out), "--no-progress", *flags])
    return status, out


def test_demo_defaults_reach_the_readme_accuracy_on_digits(tmp_path, capsys):
    """`make demo` runs exactly this; the README promises >= 0.97."""
    status, out = train(tmp_path, "--model", "cnn", "--dataset", "digits")
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["epochs"] == DEFAULTS[("cnn", "digits")]["epochs"]
    assert metrics["train_seconds"] > 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "test accuracy" in printed


def test_run_directory_holds_everything(tmp_path):
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "2", "--seed", "3")
    assert status == 0
    expected = {
        "config.yaml",
        "run.json",
        "metrics.json",
        "history.json",
        "last.npz",
        "best.npz",
        "history.png",
        "confusion_matrix.png",
        "misclassified.png",
        "confusion_matrix.json",
    }
    assert expected <= {path.name for path in out.iterdir()}
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["epochs"] == 2 and config["seed"] == 3 and config["model"] == "mlp"
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    matrix = json.loads((out / "confusion_matrix.json").read_text())
    assert sum(map(sum, matrix)) == 360  # the digits test split
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_a_run(tmp_path, capsys):
    train(tmp_path, "--model", "mlp", "--epochs", "2")
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "4", "--resume")
    assert status == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3, 4]


def test_overfit_batch_switch(tmp_path, capsys):
    status, _ = train(tmp_path, "--model", "mlp", "--overfit-batch", "--epochs", "60")
    assert status == 0
    assert "overfit one batch: final train accuracy 1.000 (ok)" in capsys.readouterr().out


def test_flags_override_the_per_dataset_defaults():
    settings = resolve_settings("cnn", "mnist", {"lr": 0.5, "epochs": None})
    assert settings["lr"] == 0.5
    assert settings["epochs"] == DEFAULTS[("cnn", "mnist")]["epochs"]
    assert resolve_settings("cnn", "cifar10", {})["channels"] == [32, 64]


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--model", "mlp", "--dataset", "nope"], "nope"),
        (["--model", "mlp", "--epochs", "0"], "--epochs"),
        (["--model", "mlp", "--lr", "-1"], "--lr"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, flags, message):
    status, out = train(tmp_path, *flags)
    error = capsys.readouterr().err
    assert status == 2
    assert not out.exists(), "a failed command must not leave a run directory behind"
    assert error.startswith("dlcc: error:") and message in error
    assert "Traceback" not in error


def test_the_console_command_runs_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "dlcc", "numpy", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--overfit-batch" in result.stdout


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path):
    """Kill a real training process mid-run, resume it with the same command plus
    --resume, and end with exactly the weights of a run that was never interrupted."""
    command = [sys.executable, "-m", "dlcc", "numpy", "train", "--model", "cnn"]
    command += ["--dataset", "digits", "--epochs", "30", "--no-progress"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, **quiet)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*command, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / "last.npz").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
    finally:
        process.kill()  # SIGKILL: no cleanup handlers run
        process.wait()
    with np.load(killed / "last.npz") as checkpoint:
        epochs_done = len(json.loads(str(checkpoint["meta.history"]))["epoch"])
    assert epochs_done < 30, "the run finished before it could be killed"

    subprocess.run([*command, "--out", str(killed), "--resume"], check=True, **quiet)
    with np.load(tmp_path / "whole" / "last.npz") as whole, np.load(killed / "last.npz") as resumed:
        model_keys = [key for key in whole.files if key.startswith("model.")]
        assert model_keys
        for key in model_keys:
            np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


def test_confusion_matrix_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix as reference

    from dlcc.plots import confusion_matrix

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 5), reference(y_true, y_pred, labels=range(5))
    )
