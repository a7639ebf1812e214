"""Part 5: everything together. The course's trainer, `dlcc.training.loop.train`, runs the
digits smoke recipe with the learner's loop (`train_one_epoch`, `evaluate`), model
(`SmallCNN`) and one-cycle schedule (`build_scheduler`): SmallCNN on the embedded 8x8
digits (no download), AdamW, one-cycle, 6 epochs, in seconds on one CPU thread.
"""

from __future__ import annotations

import json

import pytest
import torch

from dlcc.training.config import check_config, config_from_dict
from dlcc.training.loop import train

# recipes/mnist_cnn_smoke.yaml, written out here: the grader runs without the recipes folder.
# On CPU with one thread, so that a run gives the same result on every machine.
SMOKE_RECIPE = {
    "data": {"dataset": "digits", "batch_size": 64, "augment": [{"random_crop": {"padding": 1}}]},
    "model": {"name": "small_cnn", "options": {"widths": [16, 32], "dropout": 0.1}},
    "optim": {"name": "adamw", "lr": 0.03, "weight_decay": 0.0005},
    "schedule": {"name": "onecycle", "pct_start": 0.25},
    "train": {"epochs": 6, "seed": 0, "device": "cpu", "threads": 1, "progress": False},
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    config = config_from_dict(SMOKE_RECIPE, "the digits smoke recipe")
    check_config(config)
    run_dir = tmp_path_factory.mktemp("a2-digits") / "run"
    threads = torch.get_num_threads()
    try:
        metrics = train(config, run_dir)
    finally:
        torch.set_num_threads(threads)  # train() sets it from train.threads
    history = json.loads((run_dir / "history.json").read_text())["columns"]
    return metrics, history


def losses_text(history: dict) -> str:
    return ", ".join(f"{loss:.2f}" for loss in history["train_loss"])


def test_smoke_recipe_reaches_80_percent(smoke_run):
    metrics, history = smoke_run
    assert metrics["test_accuracy"] >= 0.8, (
        f"digits smoke recipe (SmallCNN, AdamW, one-cycle, 6 epochs): test accuracy "
        f"{metrics['test_accuracy']:.3f}, expected >= 0.8; training loss by epoch: "
        f"{losses_text(history)}"
    )


def test_smoke_run_learns_under_one_cycle(smoke_run):
    _, history = smoke_run
    losses, lrs = history["train_loss"], history["lr"]
    assert losses[-1] < 0.5 * losses[0], (
        f"digits smoke recipe: the training loss by epoch ({losses_text(history)}) did not "
        "fall to half its first value"
    )
    peak = max(lrs)
    lrs_text = ", ".join(f"{lr:.2g}" for lr in lrs)
    assert lrs[0] < peak and lrs.index(peak) < len(lrs) - 1 and lrs[-1] < 1e-3 * peak, (
        f"digits smoke recipe: the lr of each epoch's last step ({lrs_text}) does not rise to "
        "a peak and then fall far below it, as a one-cycle schedule does"
    )
