"""Shared bits of the training tests: tiny recipes on the embedded digits (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def make_image_masks(folder: Path, count: int = 40, size: int = 16, seed: int = 0) -> Path:
    """A folder of image/mask PNG pairs: noisy images, each with one brighter disc to find."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows, columns = np.mgrid[:size, :size]
    for index in range(count):
        centre_row, centre_column = rng.uniform(size * 0.25, size * 0.75, 2)
        radius = rng.uniform(size * 0.12, size * 0.25)
        disc = (rows - centre_row) ** 2 + (columns - centre_column) ** 2 < radius**2
        image = np.clip(0.3 + 0.4 * disc + rng.normal(0, 0.12, (size, size)), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{index}.png")
        Image.fromarray((disc * 255).astype(np.uint8)).save(folder / "masks" / f"{index}.png")
    return folder


# The segmentation smoke recipe's shape, without BatchNorm so DDP runs compare exactly;
# data.path is filled in by the test. 40 pairs: 8 test, 6 val, 26 train.
SEGMENTATION = {
    "task": {"name": "segmentation"},
    "data": {"dataset": "image_masks", "batch_size": 8, "val_size": 0.2},
    "model": {"name": "small_fcn", "options": {"widths": [8, 8], "batch_norm": False}},
    "optim": {"name": "adamw", "lr": 0.02},
    "schedule": {"name": "onecycle"},
    "train": {"epochs": 6, "deterministic": True, "threads": 1, "progress": False},
}
