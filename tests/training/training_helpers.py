"""Shared bits of the training tests: tiny recipes on the embedded digits (no download)."""

from __future__ import annotations

from pathlib import Path

import yaml

# An MLP without BatchNorm or dropout: its result does not depend on how a batch is split,
# so single-process, DDP and gradient-accumulation runs can be compared exactly.
# digits: 1,437 train+val images; val_size 157 leaves 1,280 = 20 batches of 64.
SPLITTABLE = {
    "data": {"dataset": "digits", "batch_size": 64, "val_size": 157},
    "model": {"name": "mlp", "options": {"hidden": [64]}},
    "optim": {"name": "sgd", "lr": 0.05},
    "schedule": {"name": "none"},
    "train": {"epochs": 2, "deterministic": True, "threads": 1, "progress": False},
}


def write_recipe(folder: Path, recipe: dict, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(recipe))
    return path


def merged(base: dict, **sections) -> dict:
    """A copy of `base` with some keys of some sections replaced."""
    recipe = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for section, values in sections.items():
        recipe.setdefault(section, {}).update(values)
    return recipe
