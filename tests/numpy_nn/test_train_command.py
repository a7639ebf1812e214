"""`dlcc numpy train`, called as a function (and as a real subprocess), and its run directory."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import dlcc.numpy_nn.train as numpy_train
from dlcc.cli import main
from dlcc.errors import DlccError
from dlcc.numpy_trainer import DEFAULTS, evaluate_numpy_run, resolve_settings
from dlcc.runs import METRIC_KEYS, read_history, read_run

PNG = b"\x89PNG\r\n\x1a\n"


def train(tmp_path, *flags, name="run"):
    out = tmp_path / name
    status = main(["numpy", "train", "--out", str(out), "--no-progress", *flags])
    return status, out


def read_json(path):
    return json.loads(path.read_text())


def test_demo_defaults_reach_the_readme_accuracy_on_digits(tmp_path, capsys):
    """`make demo` runs exactly this; the README promises >= 0.97."""
    status, out = train(tmp_path, "--model", "cnn", "--dataset", "digits")
    assert status == 0
    metrics = read_json(out / "metrics.json")
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["epochs"] == DEFAULTS[("cnn", "digits")]["epochs"]
    assert metrics["train_seconds"] > 0
    assert metrics["train_seconds_this_session"] == metrics["train_seconds"]
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "test accuracy" in printed


def test_run_directory_follows_the_one_contract(tmp_path):
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "2", "--seed", "3")
    assert status == 0
    expected = {
        "config.yaml",
        "run.json",
        "metrics.json",
        "history.json",
        "checkpoints",
        "history.png",
        "confusion_matrix.png",
        "misclassified.png",
        "confusion_matrix.json",
    }
    assert expected <= {path.name for path in out.iterdir()}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.npz", "last.npz"]
    assert not list(out.glob("*.npz")), "checkpoints live in checkpoints/, not the root"

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["kind"] == "numpy" and config["task"] == "classification"
    assert config["model"]["name"] == "mlp" and config["data"]["dataset"] == "digits"
    assert config["train"]["epochs"] == 2 and config["train"]["seed"] == 3
    assert config["train"]["monitor"] == "val_loss" and config["train"]["mode"] == "min"
    assert set(config) == {"kind", "task", "data", "model", "optim", "schedule", "train"}
    saved = read_run(out)
    assert saved.kind == "numpy" and saved.task == "classification"

    history = read_json(out / "history.json")
    columns = history["columns"]
    assert columns["epoch"] == [1, 2]
    assert set(columns) == {"epoch", "train_loss", "train_accuracy", "val_loss",
                            "val_accuracy", "lr", "seconds"}  # fmt: skip
    assert all(len(values) == 2 for values in columns.values())
    assert history["best_epoch"] in (1, 2) and history["stopped_early"] is False
    assert read_history(saved.run).epoch == [1, 2]

    metrics = read_json(out / "metrics.json")
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["kind"] == "numpy" and metrics["task"] == "classification"
    assert metrics["monitor"] == "val_loss" and metrics["mode"] == "min"
    assert metrics["best_epoch"] == history["best_epoch"]
    assert metrics["best_value"] == columns["val_loss"][history["best_epoch"] - 1]
    assert metrics["best_value"] == min(columns["val_loss"])
    assert metrics["test_checkpoint"] == "best" and metrics["epochs"] == 2
    assert {"test_accuracy", "test_loss", "model", "dataset"} <= set(metrics)
    assert "wall_seconds_this_invocation" not in metrics

    matrix = read_json(out / "confusion_matrix.json")
    assert matrix["classes"] == [str(digit) for digit in range(10)]
    assert sum(map(sum, matrix["matrix"])) == 360  # the digits test split
    record = read_json(out / "run.json")
    assert record["kind"] == "numpy" and "python" in record
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG


def test_the_test_split_uses_the_best_weights(tmp_path):
    """With monitor val_accuracy/max (the task's default), the test figures come from
    checkpoints/best.npz, and `evaluate_numpy_run` reproduces them."""
    status, out = train(
        tmp_path, "--model", "mlp", "--epochs", "6", "--monitor", "val_accuracy", "--lr", "0.01"
    )
    assert status == 0
    metrics = read_json(out / "metrics.json")
    history = read_json(out / "history.json")
    assert metrics["monitor"] == "val_accuracy" and metrics["mode"] == "max"
    val_accuracy = history["columns"]["val_accuracy"]
    assert metrics["best_value"] == max(val_accuracy)
    assert metrics["best_epoch"] == val_accuracy.index(max(val_accuracy)) + 1
    assert metrics["test_checkpoint"] == "best"

    report = evaluate_numpy_run(read_run(out))
    assert report == read_json(out / "eval_test_best.json")
    assert set(report) == {"run_dir", "kind", "task", "split", "checkpoint", "epoch",
                           "samples", "loss", "accuracy"}  # fmt: skip
    assert report["kind"] == "numpy" and report["split"] == "test"
    assert report["epoch"] == metrics["best_epoch"] and report["samples"] == 360
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["loss"] == pytest.approx(metrics["test_loss"], rel=1e-12)

    last = evaluate_numpy_run(read_run(out), checkpoint="last", split="val")
    assert last["epoch"] == 6 and last["samples"] == 180
    assert last["accuracy"] == val_accuracy[-1]
    assert (out / "eval_val_last.json").is_file()


def test_evaluate_numpy_run_says_what_is_wrong_in_one_line(tmp_path):
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "1")
    assert status == 0
    (out / "checkpoints" / "best.npz").unlink()
    with pytest.raises(DlccError, match=r"no checkpoints/best\.npz") as missing:
        evaluate_numpy_run(read_run(out))
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["model"]["hidden"] = [7]  # a model the last checkpoint does not fit
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DlccError, match="does not fit this model") as misfit:
        evaluate_numpy_run(read_run(out), checkpoint="last")
    with pytest.raises(DlccError, match="split must be one of"):
        evaluate_numpy_run(read_run(out), split="holdout")
    for error in (missing, misfit):
        assert "\n" not in str(error.value)


def stop_at_epoch(monkeypatch, epoch):
    """Interrupt `fit` (Ctrl-C) after `epoch - 1` epochs were checkpointed."""
    summary = numpy_train._epoch_summary

    def interrupted(history):
        if history.epoch[-1] == epoch:
            raise KeyboardInterrupt
        return summary(history)

    monkeypatch.setattr(numpy_train, "_epoch_summary", interrupted)


def test_repeating_the_command_resumes_an_unfinished_run(tmp_path, capsys, monkeypatch):
    stop_at_epoch(monkeypatch, 3)
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "4")
    assert status == 130 and not (out / "metrics.json").exists()
    monkeypatch.undo()
    capsys.readouterr()

    status, out = train(tmp_path, "--model", "mlp", "--epochs", "4", "--resume")
    assert status == 0
    assert "resumed from" in capsys.readouterr().out
    assert read_json(out / "history.json")["columns"]["epoch"] == [1, 2, 3, 4]
    metrics = read_json(out / "metrics.json")
    assert metrics["train_seconds_this_session"] < metrics["train_seconds"]


def test_a_finished_run_or_other_settings_are_refused(tmp_path, capsys):
    status, out = train(tmp_path, "--model", "mlp", "--epochs", "1")
    assert status == 0
    before = {path.name: path.stat().st_mtime_ns for path in out.rglob("*")}
    capsys.readouterr()

    assert train(tmp_path, "--model", "mlp", "--epochs", "1")[0] == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert train(tmp_path, "--model", "mlp", "--epochs", "2")[0] == 2
    error = capsys.readouterr().err
    assert "other settings" in error and "train.epochs: 1 -> 2" in error
    assert {path.name: path.stat().st_mtime_ns for path in out.rglob("*")} == before

    status, _ = train(tmp_path, "--model", "mlp", "--epochs", "1", "--resume", name="new")
    error = capsys.readouterr().err
    assert status == 2 and "no unfinished run" in error
    assert not (tmp_path / "new").exists()


def test_overfit_batch_switch(tmp_path, capsys):
    status, out = train(tmp_path, "--model", "mlp", "--overfit-batch", "--epochs", "60")
    assert status == 0
    assert "overfit one batch: final train accuracy 1.000 (ok)" in capsys.readouterr().out
    metrics = read_json(out / "metrics.json")
    history = read_json(out / "history.json")
    assert all(value is None for value in history["columns"]["val_loss"])
    assert metrics["test_checkpoint"] == "last" and metrics["best_epoch"] == 60
    assert metrics["best_value"] is None
    assert (out / "history.png").read_bytes()[:8] == PNG


def test_flags_override_the_per_dataset_defaults():
    settings = resolve_settings("cnn", "mnist", {"lr": 0.5, "epochs": None})
    assert settings["lr"] == 0.5
    assert settings["epochs"] == DEFAULTS[("cnn", "mnist")]["epochs"]
    assert settings["monitor"] == "val_accuracy" and settings["mode"] == "max"
    assert resolve_settings("cnn", "cifar10", {})["channels"] == [32, 64]
    assert resolve_settings("cnn", "mnist", {"monitor": "val_loss"})["mode"] == "min"
    assert resolve_settings("cnn", "mnist", {"hidden": [64]})["hidden"] == 64


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--model", "mlp", "--dataset", "nope"], "nope"),
        (["--model", "mlp", "--epochs", "0"], "--epochs"),
        (["--model", "mlp", "--lr", "-1"], "--lr"),
        (["--model", "mlp", "--patience", "0"], "--patience"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, flags, message):
    status, out = train(tmp_path, *flags)
    error = capsys.readouterr().err
    assert status == 2
    assert not out.exists(), "a failed command must not leave a run directory behind"
    assert error.startswith("dlcc: error:") and message in error
    assert "Traceback" not in error and error.count("\n") == 1


def test_the_console_command_runs_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "dlcc", "numpy", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--overfit-batch" in result.stdout and "--monitor" in result.stdout


def tracker_state(path):
    """The BestTracker state in a last.npz, or None while it cannot be read."""
    try:
        with np.load(path) as checkpoint:
            return json.loads(str(checkpoint["meta.best_tracker"]))
    except (OSError, KeyError, ValueError, EOFError):
        return None


def test_a_run_killed_with_sigkill_resumes_to_the_same_run(tmp_path):
    """Kill a real training process after its best epoch, while early stopping is
    counting, then repeat the command: the weights, the best checkpoint, the best epoch,
    the early-stopping state and metrics.json all equal those of an uninterrupted run.

    This configuration stops early (patience 3) at an epoch after its best, so a resume
    that forgot the best value or the patience count would pick another best epoch or
    stop at another epoch."""
    command = [sys.executable, "-m", "dlcc", "numpy", "train", "--model", "cnn"]
    command += ["--dataset", "digits", "--epochs", "30", "--batch-size", "8"]
    command += ["--patience", "3", "--monitor", "val_accuracy", "--no-progress"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    whole = tmp_path / "whole"
    subprocess.run([*command, "--out", str(whole)], check=True, **quiet)
    whole_metrics = read_json(whole / "metrics.json")
    assert whole_metrics["stopped_early"], "the configuration must stop early"
    assert 1 < whole_metrics["best_epoch"] < whole_metrics["epochs"]

    # Kill it after its best epoch, while patience is counting: a resume that forgot the
    # best value would then call the next epoch the best. (Killed earlier, a later
    # improvement could hide that.) The window is a couple of epochs; retry if missed.
    for attempt in range(3):
        killed = tmp_path / f"killed{attempt}"
        process = subprocess.Popen(
            [*command, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 240
            while process.poll() is None:
                assert time.monotonic() < deadline, "the training process hangs"
                state = tracker_state(killed / "checkpoints" / "last.npz")
                if (
                    state
                    and state["best_epoch"] == whole_metrics["best_epoch"]
                    and state["epochs_without_improvement"] >= 1
                ):
                    break
                time.sleep(0.002)
        finally:
            process.kill()  # SIGKILL: no cleanup handlers run
            process.wait()
        if not (killed / "metrics.json").exists():
            break
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"
    state = tracker_state(killed / "checkpoints" / "last.npz")
    assert state["best_epoch"] == whole_metrics["best_epoch"]
    assert state["epochs_without_improvement"] >= 1 and not state["stopped_early"]

    subprocess.run([*command, "--out", str(killed)], check=True, **quiet)  # resumes
    checkpoints = [whole / "checkpoints", killed / "checkpoints"]
    for name in ("last.npz", "best.npz"):
        with np.load(checkpoints[0] / name) as expected, np.load(checkpoints[1] / name) as got:
            assert expected.files == got.files
            keys = [key for key in expected.files if key != "meta.history"]  # holds times
            assert any(key.startswith("model.") for key in keys)
            for key in keys:
                np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{name} {key}")
    assert tracker_state(checkpoints[1] / "last.npz") == tracker_state(checkpoints[0] / "last.npz")

    metrics = read_json(killed / "metrics.json")
    timing = {"train_seconds", "train_seconds_this_session"}
    assert set(metrics) == set(whole_metrics)
    for key in set(metrics) - timing:
        assert metrics[key] == whole_metrics[key], key
    assert metrics["train_seconds_this_session"] < metrics["train_seconds"]
    resumed_history, whole_history = (read_json(d / "history.json") for d in (killed, whole))
    for columns in (resumed_history["columns"], whole_history["columns"]):
        del columns["seconds"]
    assert resumed_history == whole_history


def test_confusion_matrix_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix as reference

    from dlcc.plots import confusion_matrix

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 5), reference(y_true, y_pred, labels=range(5))
    )
