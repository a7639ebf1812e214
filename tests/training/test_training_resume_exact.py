"""Resume is exact in full: after a SIGKILL and a resume, the best checkpoint, best_epoch,
the early-stopping state, the history and every value of metrics.json (times aside)
equal an uninterrupted run's, for classification, segmentation and the language model
(with its recurrent state carried between batches).

The classification run monitors val_loss with patience 2 and stops early (at epoch 7 when
written), and its best epoch is not its last; it is killed after epoch 5 or 6, so a resume
that forgot the best value would pick a later "best" and stop at another epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
from training_helpers import SEGMENTATION, make_image_masks, merged, write_recipe

from dlcc.training.checkpoint import load_checkpoint

CLASSIFICATION = {
    "task": {"name": "classification", "monitor": "val_loss", "mode": "min"},
    "data": {
        "dataset": "digits",
        "batch_size": 32,
        "augment": [{"random_crop": {"padding": 1}}, "hflip"],
    },
    "model": {"name": "small_cnn", "options": {"widths": [8, 16], "dropout": 0.2}},
    "optim": {"name": "adamw", "lr": 0.05, "weight_decay": 0.0005},
    "schedule": {"name": "none"},
    "train": {"epochs": 12, "patience": 2, "deterministic": True, "threads": 1},
}
TIMES = {"train_seconds", "train_seconds_this_session"}
SPEEDS = {"seconds", "samples_per_second"}


def _epochs_done(run_dir) -> int:
    try:
        return len(json.loads((run_dir / "history.json").read_text())["columns"]["epoch"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _kill_after(command, run_dir, epochs: int) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _epochs_done(run_dir) < epochs and process.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.002)
    finally:
        process.kill()  # SIGKILL: no cleanup handler runs
        process.wait()


def _outcome(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    for column in SPEEDS:
        history["columns"].pop(column)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return metrics, history, best, last


# The language model's smoke recipe: streams read in order, the LSTM state carried between
# batches (reset at each epoch start, so a checkpoint at an epoch's end is enough).
LANGUAGE_MODEL = {
    "task": {"name": "language_model"},
    "data": {"dataset": "copy", "batch_size": 16, "eval_batch_size": 8, "seq_len": 32,
             "sequential": True},
    "model": {"name": "char_rnn", "options": {"embedding": 16, "hidden": 32, "dropout": 0.1}},
    "optim": {"name": "adamw", "lr": 0.01},
    "schedule": {"name": "onecycle"},
    "train": {"epochs": 8, "grad_clip": 5.0, "deterministic": True, "threads": 1},
}  # fmt: skip


@pytest.mark.parametrize("task", ["classification", "segmentation", "language_model"])
def test_a_killed_run_resumes_to_the_same_best_checkpoint_and_metrics(task, tmp_path):
    if task == "classification":
        recipe, kill_after = CLASSIFICATION, 5
    elif task == "language_model":
        recipe, kill_after = LANGUAGE_MODEL, 3
    else:
        data = make_image_masks(tmp_path / "pairs")
        recipe = merged(SEGMENTATION, data={"path": str(data)}, train={"epochs": 8})
        recipe["model"] = {"name": "small_fcn", "options": {"widths": [8, 8]}}  # with BN
        kill_after = 3
    path = write_recipe(tmp_path, recipe)
    command = [sys.executable, "-m", "dlcc", "train", str(path), "--no-progress", "--out"]
    subprocess.run([*command, str(tmp_path / "whole")], check=True, capture_output=True)
    whole = _outcome(tmp_path / "whole")

    killed = tmp_path / "killed"
    _kill_after([*command, str(killed)], killed, kill_after)
    interrupted_after = load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"]
    assert kill_after <= interrupted_after < whole[0]["epochs"], "killed too late to test"
    assert not (killed / "metrics.json").exists()
    result = subprocess.run([*command, str(killed)], check=True, text=True, capture_output=True)
    assert f"resuming {killed} after epoch {interrupted_after}" in result.stdout
    resumed = _outcome(killed)

    (metrics, history, best, last), (metrics2, history2, best2, last2) = whole, resumed
    if task == "classification":  # the scenario the docstring promises
        assert metrics["stopped_early"] and metrics["epochs"] < 12, metrics
        assert metrics["best_epoch"] < metrics["epochs"], metrics
    assert {k: v for k, v in metrics2.items() if k not in TIMES} == {
        k: v for k, v in metrics.items() if k not in TIMES
    }
    assert history2 == history
    assert best2["epoch"] == best["epoch"] == metrics["best_epoch"]
    assert best2["tracker"] == best["tracker"] and last2["tracker"] == last["tracker"]
    for key in best["model"]:
        assert torch.equal(best["model"][key], best2["model"][key]), f"best.pt {key} differs"
        assert torch.equal(last["model"][key], last2["model"][key]), f"last.pt {key} differs"
