"""Helpers shared by the Assignment 2 graded tests (imported by name: this folder is on
sys.path). Nothing here calls a learner's solution region: the oracles are analytic
formulas and plain PyTorch, so each test grades only the region(s) it names.

When graded, the learner's code runs in a process of its own (`dlcc.course.remote`), and
PyTorch's autograd cannot span two processes: a model that the learner's loop trains, its
optimiser and its GradScaler are made in the learner's process by the helpers marked
`learner_side`, which return handles to them. What the tests check comes back as data (a
model's state_dict, its parameters, the modes a recorder saw), and the expected values are
computed here, from data: the oracle's twin of a model is a copy made here whose weights the
learner's copy was loaded with (`twins`), never the learner's object itself. Under plain
pytest the same helpers run in place.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.course.checks import check_close, randn  # noqa: F401  (the tests import them from here)
from dlcc.course.remote import connected, learner_side
from dlcc.runs import BestTracker, History, RunDir
from dlcc.training import loop
from dlcc.training.state import RunState
from dlcc.training.tasks import ClassificationTask

CPU = torch.device("cpu")


# ---- the learner's process -----------------------------------------------------------------
@learner_side
def use_torch_threads(count: int) -> int:
    """Run PyTorch on `count` threads (in the learner's process when graded); the old count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous


def on_one_thread_there() -> None:
    """When graded, the learner's process runs PyTorch on one thread too (it is a process of
    its own, with its own setting; it starts with one thread per core)."""
    if connected():
        use_torch_threads(1)


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


def tiny_mlp(features: int = 12, classes: int = 3, hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, classes))


def dropout_net() -> nn.Module:
    """Linear, dropout, a `ModeRecorder` (index 2), linear: 12 features, 3 classes."""
    return nn.Sequential(nn.Linear(12, 8), nn.Dropout(0.2), ModeRecorder(), nn.Linear(8, 3))


def batchnorm_net() -> nn.Module:
    """Linear, BatchNorm (index 1), ReLU, dropout, linear: 12 features, 3 classes."""
    return nn.Sequential(
        nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )


class ModeRecorder(nn.Module):
    """Passes its input through and records `self.training` at every call."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return x


def state_dict_copy(model: nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def twins(factory, *args, seed: int, **kwargs):
    """(the learner's model, its twin here): `factory(*args, **kwargs)` made here after
    ``torch.manual_seed(seed)``, and made again on the learner's side with the same weights
    (and buffers) loaded. `factory` must be a module-level function or class (torch.nn.Linear,
    a function of this module): the learner's process makes its copy by that name."""
    torch.manual_seed(seed)
    twin = factory(*args, **kwargs)
    return loaded(factory, state_dict_copy(twin), *args, **kwargs), twin


@learner_side
def loaded(factory, state: dict, *args, **kwargs) -> nn.Module:
    """`factory(*args, **kwargs)` with `state` loaded: a model in the learner's process."""
    model = factory(*args, **kwargs)
    model.load_state_dict(state)
    return model


@learner_side
def state_of(model: nn.Module) -> dict:
    """A copy of the (learner's) model's state_dict, as data."""
    return state_dict_copy(model)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The parameters of a model here, as one flat tensor."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@learner_side
def parameters_of(model: nn.Module) -> torch.Tensor:
    """The (learner's) model's parameters as one flat tensor, as data."""
    return flat_parameters(model).clone()


@learner_side
def gradients_are_none(model: nn.Module) -> list[bool]:
    """Whether each parameter of the (learner's) model has no gradient."""
    return [p.grad is None for p in model.parameters()]


# ---- calling the loop the way `dlcc.training.loop.train` does -----------------------------
@learner_side
def sgd_for(model: nn.Module, **hyper) -> torch.optim.Optimizer:
    """torch.optim.SGD over the (learner's) model's own parameters."""
    return torch.optim.SGD(model.parameters(), **hyper)


class RecordingScaler(torch.amp.GradScaler):
    """A GradScaler that records which of its methods the loop calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def scale(self, outputs):
        self.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


@learner_side
def recording_scaler(*args, **kwargs) -> RecordingScaler:
    """A `RecordingScaler` in the learner's process (the loop scales its loss with it)."""
    return RecordingScaler(*args, **kwargs)


@learner_side
def train_epoch(
    model: nn.Module,
    batches: list,
    optimizer: torch.optim.Optimizer,
    *,
    accumulate: int = 1,
    label_smoothing: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
) -> dict:
    """`loop.train_one_epoch` on CPU in fp32, one process, no augmentation or schedule, from
    a run's first epoch. `model`, `optimizer` and `scaler` are the learner's side's."""
    num_classes = int(max(int(labels.max()) for _, labels in batches)) + 1
    context = loop.EpochContext(
        task=ClassificationTask(num_classes, label_smoothing=label_smoothing),
        optimizer=optimizer,
        scheduler=None,
        scaler=scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False),
        device=CPU,
        accumulate=accumulate,
    )
    return loop.train_one_epoch(model, batches, context, fresh_state())


def fresh_state() -> RunState:
    """The state of a run before its first epoch."""
    return RunState(History(["epoch"]), BestTracker("val_accuracy", "max"))


@learner_side
def evaluate(model: nn.Module, batches: list, num_classes: int, **options) -> dict:
    """`loop.evaluate` on CPU in fp32, one process, with the classification task."""
    return loop.evaluate(model, batches, ClassificationTask(num_classes), device=CPU, **options)


# ---- SmallCNN: the learner's, described as data; a plain twin of it here ------------------
@learner_side
def describe_features(model: nn.Module) -> list[dict]:
    """Each block of the (learner's) model.features: its class, whether it is a ConvBNReLU or a
    DepthwiseSeparable, and (in, out, stride, groups) of each of its convolutions."""
    from dlcc.models.cnn import ConvBNReLU, DepthwiseSeparable

    described = []
    for block in model.features:
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        described.append(
            {
                "kind": type(block).__name__,
                "conv_bn_relu": isinstance(block, ConvBNReLU),
                "depthwise": isinstance(block, DepthwiseSeparable),
                "convs": [(c.in_channels, c.out_channels, c.stride[0], c.groups) for c in convs],
            }
        )
    return described


@learner_side
def parameter_shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...], bool]]:
    """(name, shape, requires_grad) of each parameter of the (learner's) model."""
    return [(name, tuple(p.shape), bool(p.requires_grad)) for name, p in model.named_parameters()]


@learner_side
def features_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model.features(x) in evaluation mode, without gradients."""
    model.eval()
    with torch.no_grad():
        return model.features(x)


@learner_side
def outputs_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) in evaluation mode, without gradients."""
    model.eval()
    with torch.no_grad():
        return model(x)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    """A plain twin of ConvBNReLU: conv (no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class PlainCNN(nn.Module):
    """A twin of a SmallCNN for a given list of blocks (in, out, stride): the first a
    conv-BN-ReLU, the others too or depthwise-separable; then the mean over H and W, dropout
    and the linear head. The learner's SmallCNN's state_dict loads into it."""

    def __init__(self, num_classes: int, blocks, depthwise: bool = False, dropout: float = 0.0):
        super().__init__()
        layers = []
        for index, (c_in, c_out, stride) in enumerate(blocks):
            if depthwise and index > 0:
                layers.append(
                    nn.Sequential(
                        conv_bn_relu(c_in, c_in, 3, stride, groups=c_in),
                        conv_bn_relu(c_in, c_out, 1),
                    )
                )
            else:
                layers.append(conv_bn_relu(c_in, c_out, 3, stride))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(blocks[-1][1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).mean(dim=(2, 3))))


def load_into_twin(twin: nn.Module, state: dict, what: str) -> nn.Module:
    """Load a learner's model's state_dict into its twin here, or fail saying `what` has
    parameters of other names or shapes."""
    try:
        twin.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else ""
        raise AssertionError(
            f"{what}: its parameters and buffers are not those of the expected network "
            f"({detail[:300]})"
        ) from None
    return twin


# ---- SmallCNN.forward on parts put together here ------------------------------------------
def smallcnn_parts(in_channels: int, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """Stand-in parts of a SmallCNN, seeded: features of two plain convolutions, then the
    pool, dropout and head SmallCNN uses (as attributes of one module)."""
    torch.manual_seed(0)
    parts = nn.Module()
    parts.features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, 2, 1), nn.ReLU()
    )
    parts.pool = nn.AdaptiveAvgPool2d(1)
    parts.dropout = nn.Dropout(dropout)
    parts.head = nn.Linear(5, num_classes)
    return parts


@learner_side
def assembled_smallcnn(in_channels: int, num_classes: int, dropout: float, state: dict):
    """A SmallCNN whose parts are set here (its __init__ is not run): `smallcnn_parts`, with
    the weights `state`."""
    from dlcc.models.cnn import SmallCNN

    parts = smallcnn_parts(in_channels, num_classes, dropout)
    parts.load_state_dict(state)
    model = SmallCNN.__new__(SmallCNN)
    nn.Module.__init__(model)
    model.in_channels = in_channels
    model.features = parts.features
    model.pool = parts.pool
    model.dropout = parts.dropout
    model.head = parts.head
    return model


@learner_side
def recorded_forward(model: nn.Module, x: torch.Tensor) -> dict:
    """model(x) in evaluation mode, with the (name, output shape) of each of its parts
    features, pool, dropout and head in the order they ran."""
    calls = []
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: calls.append((name, tuple(output.shape)))
        )
        for name in ("features", "pool", "dropout", "head")
    ]
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {"calls": calls, "logits": logits}


@learner_side
def overfit_smallcnn(x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> dict:
    """The learner's SmallCNN(1, 10, widths=(8, 16)) (seed 0) after `steps` Adam steps on the
    one batch (x, y): its losses (in training mode) and its state_dict."""
    from dlcc.models.cnn import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(1, 10, widths=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"losses": losses, "state": state_dict_copy(model)}


# ---- schedules ------------------------------------------------------------------------------
def one_parameter_optimizer(kind: str, lr: float) -> torch.optim.Optimizer:
    parameters = [nn.Parameter(torch.zeros(2))]
    if kind == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9)
    return torch.optim.AdamW(parameters, lr=lr)


def momentum_of(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group["momentum"]


def run_schedule(optimizer, scheduler, steps: int) -> tuple[list[float], list[float]]:
    """The lr and momentum (beta1 for Adam) each of `steps` optimiser steps uses."""
    lrs, momenta = [], []
    for _ in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        momenta.append(float(momentum_of(optimizer.param_groups[0])))
        optimizer.step()
        scheduler.step()
    return lrs, momenta


@learner_side
def scheduled_rates(
    kind: str, peak_lr: float, schedule: dict, total_steps: int, steps_per_epoch: int
) -> dict:
    """The learner's build_scheduler for a one-parameter `kind` optimiser ("sgd" or "adamw")
    and ScheduleConfig(**schedule): the scheduler's class name, whether it is a torch LR
    scheduler, and (if so) the lr and momentum of each of `total_steps` steps."""
    from dlcc.training.config import ScheduleConfig
    from dlcc.training.schedules import build_scheduler

    optimizer = one_parameter_optimizer(kind, peak_lr)
    scheduler = build_scheduler(
        optimizer, ScheduleConfig(**schedule), peak_lr, total_steps, steps_per_epoch
    )
    found = {
        "scheduler": type(scheduler).__name__,
        "is_lr_scheduler": isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler),
    }
    if found["is_lr_scheduler"]:
        found["lrs"], found["momenta"] = run_schedule(optimizer, scheduler, total_steps)
    return found


# ---- the whole run --------------------------------------------------------------------------
@learner_side
def smoke_training(recipe: dict) -> dict:
    """`dlcc.training.loop.train` on `recipe`, into a temporary folder of the learner's side:
    its metrics, its history's columns, and the weights it tested (best.pt's, else last.pt's)."""
    from dlcc.training.checkpoint import load_checkpoint
    from dlcc.training.config import check_config, config_from_dict

    config = config_from_dict(recipe, "the digits smoke recipe")
    check_config(config)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="a2-digits-") as folder:
        run_dir = Path(folder) / "run"
        try:
            metrics = loop.train(config, run_dir)
        finally:
            torch.set_num_threads(threads)  # train() sets it from train.threads
        run = RunDir(run_dir, "torch")
        history = json.loads(run.history.read_text())["columns"]
        tested = run.best if metrics.get("test_checkpoint") == "best" else run.last
        weights = load_checkpoint(tested)["model"]
    numbers = {key: value for key, value in metrics.items() if isinstance(value, int | float)}
    return {"metrics": numbers, "history": history, "weights": weights}


def accuracy_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of `x` whose largest logit is the label, with `model` here in evaluation
    mode."""
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xs).argmax(1) == ys).sum()) for xs, ys in batches_of(x, y, 256))
    return correct / len(y)
