"""Part 5: everything together. The course's trainer, `dlcc.training.loop.train`, runs the
digits smoke recipe with the learner's loop (`train_one_epoch`, `evaluate`), model
(`SmallCNN`) and one-cycle schedule (`build_scheduler`): SmallCNN on the embedded 8x8
digits (no download), AdamW, one-cycle, 6 epochs, in seconds on one CPU thread.

When graded, the whole run is in the learner's process (`a2_helpers.smoke_training`), in a
folder of its own: its metrics, history and tested weights come back as data. The test
accuracy is computed here, with those weights in a plain twin of the SmallCNN.
"""

from __future__ import annotations

import pytest

from dlcc.training.config import config_from_dict
from dlcc.training.data import load_data

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
def smoke_run():
    """The run's metrics, history columns and tested weights, as data."""
    # Imported here: the course's own checks read SMOKE_RECIPE without this folder on sys.path.
    from a2_helpers import smoke_training

    return smoke_training(SMOKE_RECIPE)


def losses_text(history: dict) -> str:
    return ", ".join(f"{loss:.2f}" for loss in history["train_loss"])


def test_smoke_recipe_reaches_80_percent(smoke_run):
    from a2_helpers import PlainCNN, accuracy_of, load_into_twin

    twin = PlainCNN(10, [(1, 16, 1), (16, 32, 2)], dropout=0.1)  # SmallCNN, widths (16, 32)
    load_into_twin(twin, smoke_run["weights"], "digits smoke recipe: the trained SmallCNN")
    config = config_from_dict(SMOKE_RECIPE, "the digits smoke recipe")
    test = load_data(config.data, config.train.seed).test
    accuracy = accuracy_of(twin, test.inputs, test.targets)  # of the weights the run tested
    assert accuracy >= 0.8, (
        f"digits smoke recipe (SmallCNN, AdamW, one-cycle, 6 epochs): test accuracy "
        f"{accuracy:.3f}, expected >= 0.8; training loss by epoch: "
        f"{losses_text(smoke_run['history'])}"
    )


def test_smoke_run_learns_under_one_cycle(smoke_run):
    history = smoke_run["history"]
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
