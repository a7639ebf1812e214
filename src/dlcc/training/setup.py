"""What a run needs before its first step: device, precision, seeds, network, optimiser."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from dlcc.training.config import Config, ConfigError


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; anything else is checked to exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(
            f"train.device: expected auto, cpu, cuda, cuda:N or mps, got {requested!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA GPU is visible: run `dlcc doctor`")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device is mps but Apple MPS is not available here")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32. `auto`: bf16 (or fp16) on CUDA, fp32 else."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("train.precision fp16 needs a GPU; on CPU use fp32 (or bf16)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_factory(amp_dtype: torch.dtype | None, device: torch.device):
    """A function returning a fresh autocast context (a no-op context in fp32)."""

    def autocast():
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    return autocast


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy np.random calls in user code
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """Weight decay applies to weight matrices and kernels, not to biases or norm scales."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optim = config.optim
    if optim.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=optim.lr,
            momentum=optim.momentum,
            nesterov=optim.nesterov and optim.momentum > 0,
        )
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optim.name]
    return kind(groups, lr=optim.lr, betas=tuple(optim.betas))


def build_network(config: Config, data, task) -> nn.Module:
    """The recipe's model for `data`'s input shape and `task`'s number of outputs.

    A stateful model (a registry entry with ``stateful=True``: forward(x, state) ->
    (outputs, state)) is wrapped in `CarriedState`, which carries the state from batch to
    batch when the training data are sequential, and starts each batch afresh otherwise.
    """
    from dlcc.models import build_model
    from dlcc.models.registry import MODELS
    from dlcc.training.sequence import CarriedState

    model = build_model(config.model.name, data.in_shape, task.num_outputs, **config.model.options)
    if MODELS[config.model.name].stateful:
        model = CarriedState(model, carry=getattr(data.train, "sequential", False))
    return model
