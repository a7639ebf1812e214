"""The state of a run between steps, and the checkpoint that carries it across a restart.

`RunState` is everything the loop changes as it goes besides the weights and optimiser:
epochs and steps done, the history, the best-epoch tracker (with early stopping). A
checkpoint (`checkpoint_state`) holds it with the model, optimiser, schedule, scaler and
RNG states at an epoch boundary, so `restore` makes a resumed run continue exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlcc.runs.history import BestTracker, History
from dlcc.training.checkpoint import load_model_weights


@dataclass
class RunState:
    history: History
    tracker: BestTracker
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken over the whole run
    last_checkpoint: str | None = None  # the newest checkpoint on disk, for error messages


def data_summary(data) -> dict:
    """What prediction needs to know of a `DataBundle`: how inputs were standardised.

    ``{"mean": [C floats], "std": [C floats], "classes": [names], "in_shape": [C, H, W]}``.
    """
    return {
        "mean": [float(value) for value in data.mean],
        "std": [float(value) for value in data.std],
        "classes": [str(name) for name in data.classes],
        "in_shape": [int(size) for size in data.in_shape],
    }


def checkpoint_state(
    model, optimizer, scheduler, scaler, state: RunState, config, device, data=None
):
    """A plain dict of tensors and numbers: it loads with ``torch.load(weights_only=True)``.

    `data` (the run's `DataBundle`) adds ``"data"``: its `data_summary`, so a checkpoint can
    predict on new images without the training data at hand.
    """
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {
        "model_name": config.model.name,
        "model_options": dict(config.model.options),
        "task": config.task.name,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "tracker": state.tracker.state_dict(),
        "history": state.history.to_dict(),
        "rng": rng,
        "config": config.to_dict(),
        **({"data": data_summary(data)} if data is not None else {}),
    }


def restore(
    checkpoint: dict, path, model, optimizer, scheduler, scaler, state: RunState, config, device
) -> None:
    """Load `checkpoint` (read from `path`) into the model, optimiser, schedule, scaler, RNGs
    and `state`."""
    load_model_weights(model, checkpoint, path, config.model.name)
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    state.history = History.from_dict(checkpoint["history"])
    state.tracker.load_state_dict(checkpoint["tracker"])
    state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]
    state.last_checkpoint = str(path)
    torch.set_rng_state(checkpoint["rng"]["torch"])
    if device.type == "cuda" and "cuda" in checkpoint["rng"]:
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
