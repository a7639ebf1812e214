"""Helpers shared by the Assignment 2 graded tests (imported by name: this folder is on
sys.path). Nothing here calls a learner's solution region: the oracles are analytic
formulas and plain PyTorch, so each test grades only the region(s) it names.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.runs import BestTracker, History
from dlcc.training import loop
from dlcc.training.state import RunState
from dlcc.training.tasks import ClassificationTask

CPU = torch.device("cpu")


# ---- comparing tensors, with one-line messages -----------------------------------------
def check_close(what: str, actual, expected: torch.Tensor, rtol=1e-7, atol=1e-10) -> None:
    """Fail with one specific line unless `actual` is a tensor like `expected` (shape,
    values within atol + rtol * |expected|). The worst index is reported."""
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(
            f"{what}: a tensor of shape {tuple(expected.shape)} expected, got "
            f"{type(actual).__name__}"
        )
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what}: shape {tuple(expected.shape)} expected, got {tuple(actual.shape)}"
        )
    actual = actual.detach().to(torch.float64)
    expected = expected.detach().to(torch.float64)
    difference = (actual - expected).abs()
    scaled = difference / (atol + rtol * expected.abs())
    scaled = torch.where(torch.isnan(scaled), torch.full_like(scaled, torch.inf), scaled)
    if scaled.numel() and scaled.max() > 1.0:
        flat = int(scaled.argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), scaled.shape))
        raise AssertionError(
            f"{what} differs from the expected value: max abs. error "
            f"{difference[index]:.1e} at index {index} (got {actual[index]:.6g}, "
            f"expected {expected[index]:.6g})"
        )


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """Standard normal float64 values of `shape` (() for a scalar), from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


# ---- small classification data and models ----------------------------------------------
def blobs(count: int, features: int = 12, classes: int = 3, seed: int = 0):
    """(x (count, features) float32, y (count,) int64): Gaussian clusters, one per class."""
    generator = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(classes, features, generator=generator)
    labels = torch.arange(count) % classes
    labels = labels[torch.randperm(count, generator=generator)]
    points = centres[labels] + torch.randn(count, features, generator=generator)
    return points, labels


def batches_of(x: torch.Tensor, y: torch.Tensor, size: int) -> list:
    """A loader stand-in: a list of (images, labels) batches, in order."""
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def tiny_mlp(features: int = 12, classes: int = 3, hidden: int = 16, seed: int = 0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, classes))


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ---- calling the loop the way `dlcc.training.loop.train` does -----------------------------
def train_epoch(
    model: nn.Module,
    batches: list,
    optimizer: torch.optim.Optimizer,
    *,
    accumulate: int = 1,
    label_smoothing: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
    state: RunState | None = None,
) -> dict:
    """`loop.train_one_epoch` on CPU in fp32, one process, no augmentation or schedule."""
    num_classes = int(max(int(labels.max()) for _, labels in batches)) + 1
    context = loop.EpochContext(
        task=ClassificationTask(num_classes, label_smoothing=label_smoothing),
        optimizer=optimizer,
        scheduler=None,
        scaler=scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False),
        device=CPU,
        accumulate=accumulate,
    )
    return loop.train_one_epoch(model, batches, context, state or fresh_state())


def fresh_state() -> RunState:
    """The state of a run before its first epoch."""
    return RunState(History(["epoch"]), BestTracker("val_accuracy", "max"))


def evaluate(model: nn.Module, batches: list, num_classes: int, **options) -> dict:
    """`loop.evaluate` on CPU in fp32, one process, with the classification task."""
    return loop.evaluate(model, batches, ClassificationTask(num_classes), device=CPU, **options)


class ModeRecorder(nn.Module):
    """Passes its input through and records `self.training` at every call."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return x
