"""The task interface: everything the training loop needs to know about a problem.

The loop (`dlcc.training.loop`) holds no task code. It asks the task for:
  - `loss(outputs, targets)`: a scalar tensor, the batch mean, to backpropagate;
  - `metrics(sync)`: fresh torchmetrics objects by name, updated with
    ``metric.update(outputs, targets)`` and synced across ranks on ``compute()``;
  - `monitor` and `mode`: the history column that decides "best" and its direction;
  - `num_outputs`: what the model's last layer produces (classes, mask channels);
  - `reporter(data)`: collects the test split's outputs and writes the report (plots, JSON);
  - `prepare_data(data)`: the targets the task trains on, made from the dataset's (the
    detection task turns masks into heatmaps); the identity by default;
  - `dense`: True when targets are per-pixel maps (B, K, H, W), so that augmentation moves
    them with the images (`dlcc.training.paired_transforms`);
  - `count(targets)`: how many items a batch's loss is a mean over, to weight batch means
    (samples by default; the language model counts characters, padding left out);
  - `adversary(model)`: None, or a step ``(inputs, targets, generator) -> (inputs,
    targets)`` run on every training batch after augmentation: adversarial training
    (classification's ``adversarial`` option, `dlcc.adversarial.AdversarialTraining`).

A reporter may also have ``bind_model(model)``: `finish_run` hands it the trained model
(with the weights reported on) before `write`; the language model's reporter samples text
from it.

History columns follow from the metric names: ``train_loss``, ``train_<metric>``,
``val_loss``, ``val_<metric>`` for each name in `metric_names`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch


class Reporter(Protocol):
    """Collects what the final report needs from the test pass, then writes it."""

    def update(self, inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor):
        """One batch: inputs as the model saw them, float32 outputs, targets (all on CPU)."""

    def write(self, run_dir: Path) -> dict[str, Any]:
        """Write plots and JSON into run_dir; returns extra figures for metrics.json (named
        without a split: finish_run prefixes the split reported on, e.g. test_boundary_f1_x)."""


class Task:
    """Base class: subclasses set the class attributes and implement the methods."""

    name: str = ""
    monitor: str = "val_loss"  # default "best" rule; a recipe's task.monitor overrides it
    mode: str = "min"
    metric_names: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()  # the PNG files `reporter(...).write` makes
    dense: bool = False  # True: targets are per-pixel maps, augmented with the inputs

    # -- what the loop calls ---------------------------------------------------------------
    def prepare_data(self, data):
        """The DataBundle as this task trains on it (e.g. masks -> heatmaps); as is by default."""
        return data

    def augmentation(self, spec):
        """The recipe's ``augment`` list as the loop calls it, ``(inputs, targets, generator)
        -> (inputs, targets)``, or None; image transforms, paired ones for dense tasks."""
        from dlcc.training.transforms import build_augmentation

        return build_augmentation(spec, dense=self.dense)

    def adversary(self, model):
        """None, or ``(inputs, targets, generator) -> (inputs, targets)`` that replaces each
        training batch (after augmentation) by one attacked against `model`."""
        return None

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def eval_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The validation and test loss; the training loss unless a task says otherwise."""
        return self.loss(outputs, targets)

    def metrics(self, sync: bool) -> dict[str, Any]:
        raise NotImplementedError

    def count(self, targets: torch.Tensor) -> int:
        """The number of items the batch's loss is a mean over: its samples by default."""
        return len(targets)

    @property
    def num_outputs(self) -> int:
        raise NotImplementedError

    def reporter(self, data) -> Reporter:
        raise NotImplementedError

    # -- derived ---------------------------------------------------------------------------
    def history_columns(self) -> list[str]:
        """The per-epoch columns of history.json, in order."""
        split_columns = [
            f"{split}_{name}" for split in ("train", "val") for name in ("loss", *self.metric_names)
        ]
        return ["epoch", *split_columns, "lr", "seconds", "samples_per_second"]
