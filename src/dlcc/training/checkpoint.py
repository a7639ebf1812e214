"""Checkpoints: written atomically, read safely, refused with a clear reason.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(weights_only=True)``: no pickled code from a file runs on load.

Keys (written by `dlcc.training.state.checkpoint_state`): ``format`` (this module's tag),
``model_name``, ``model_options``, ``task``, ``model`` (the state_dict), ``optimizer``,
``scheduler``, ``scaler``, ``epoch`` (epochs completed), ``step``, ``tracker`` (the
`BestTracker` state: monitor, mode, best value and epoch, early stopping), ``history``
(`History.to_dict()`), ``rng`` (torch CPU, and CUDA if any), ``config`` (the resolved
recipe as a dict), ``data`` (``{"mean", "std", "classes", "in_shape"}``: the training
split's per-channel statistics the inputs were standardised with; absent in checkpoints
written before it was added).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from dlcc.atomic import atomic_write, remove_stale_temporaries
from dlcc.errors import DlccError

FORMAT = "dlcc-checkpoint-v1"


class CheckpointError(DlccError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write `state` to `path` all-or-nothing (temporary file in the same folder, then rename)."""
    path = Path(path)
    remove_stale_temporaries(path)
    with atomic_write(path) as handle:
        torch.save({"format": FORMAT, **state}, handle)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; one-line CheckpointError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first, or pass an existing run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        KeyError,
    ) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupted or not a dlcc "
            f"checkpoint: {reason[:160]}); delete it and train again, or use another run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a dlcc checkpoint (expected format {FORMAT!r}); "
            "pass a checkpoint written by `dlcc train`"
        )
    return state


def load_model_weights(
    model: torch.nn.Module, state: dict, path: str | Path, model_name: str
) -> None:
    """Load ``state["model"]`` into `model`, or say in one line why it does not fit."""
    saved_name = state.get("model_name")
    if saved_name != model_name:
        raise CheckpointError(
            f"{path} holds weights for model {saved_name!r}, but the config builds "
            f"{model_name!r}; use the run directory that wrote it"
        )
    weights = state["model"]
    expected = model.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    mismatched = [
        f"{key} {tuple(weights[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in weights and tuple(weights[key].shape) != tuple(value.shape)
    ]
    if missing or unexpected or mismatched:
        details = []
        if mismatched:
            details.append(f"shape differs for {mismatched[0]} (+{len(mismatched) - 1} more)")
        if missing:
            details.append(f"missing {missing[0]} (+{len(missing) - 1} more)")
        if unexpected:
            details.append(f"unexpected {unexpected[0]} (+{len(unexpected) - 1} more)")
        raise CheckpointError(
            f"{path} does not fit this {model_name} (different options?): "
            f"{'; '.join(details)}; use the config the run was trained with"
        )
    model.load_state_dict(weights)
