"""Models by name, so a recipe can say ``model: small_cnn`` with options beside it.

    build_model("small_cnn", (3, 32, 32), 10, widths=[32, 64], depthwise=True)

Every builder takes the image shape (C, H, W), the number of classes and keyword options;
the valid options of each name are the keyword arguments of its class or function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dlcc.models.cnn import SmallCNN
from dlcc.models.common import ModelError, positive_int, positive_ints
from dlcc.models.ecg import BeatNet
from dlcc.models.fcn import SmallFCN
from dlcc.models.mlp import MLP
from dlcc.models.resnet import PreActResNet, resnet20
from dlcc.models.unet import UNet
from dlcc.suggest import did_you_mean


@dataclass(frozen=True)
class ModelEntry:
    constructor: Callable[..., nn.Module]  # the class or function that builds the model
    takes_shape: bool  # True: gets in_shape=(C, H, W); False: gets in_channels=C
    summary: str  # one line for listings
    output: str = "classes"  # "classes": (N, num_classes); "dense": (N, num_classes, H, W)
    inputs: str = "image"  # "image": in_shape (C, H, W); "signal": in_shape (C, T)


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLP, True, "flatten -> Linear/ReLU/Dropout -> Linear"),
    "small_cnn": ModelEntry(SmallCNN, False, "conv-BN-ReLU blocks, strided, global pool"),
    "preact_resnet": ModelEntry(PreActResNet, False, "pre-activation ResNet (default: 18)"),
    "resnet20": ModelEntry(resnet20, False, "CIFAR ResNet-20 of He et al. (0.27M params)"),
    "small_fcn": ModelEntry(SmallFCN, False, "conv-BN-ReLU blocks at full size, 1x1 head", "dense"),
    "unet": ModelEntry(UNet, False, "U-Net: encoder-decoder with skips, any input size", "dense"),
    "beatnet": ModelEntry(
        BeatNet,
        False,
        "1-D R-peak detector: conv front end, conv/LSTM/GRU body",
        "dense",
        inputs="signal",
    ),
}

# Arguments the registry fills in itself; everything else a constructor takes is an option.
_SUPPLIED = ("in_shape", "in_channels", "num_classes")


def model_names(output: str | None = None) -> list[str]:
    """The names ``build_model`` accepts, sorted; `output` keeps "classes" or "dense" ones."""
    return sorted(name for name, entry in MODELS.items() if output in (None, entry.output))


def model_options(name: str) -> dict[str, object]:
    """The options of model ``name`` and their defaults, e.g. {"hidden": (512, 256), ...}."""
    entry = _entry(name)
    parameters = inspect.signature(entry.constructor).parameters
    return {key: p.default for key, p in parameters.items() if key not in _SUPPLIED}


def build_model(
    name: str, in_shape: tuple[int, int, int], num_classes: int, **options
) -> nn.Module:
    """Build model ``name`` for images of shape ``in_shape`` = (C, H, W).

    Returns a freshly initialised nn.Module mapping (N, C, H, W) to (N, num_classes).
    Raises ModelError, with the valid choices, for an unknown name or option.
    """
    entry = _entry(name)
    layout = "(C, T)" if entry.inputs == "signal" else "(C, H, W)"
    shape = positive_ints(in_shape, f"build_model({name!r}) in_shape {layout}")
    if entry.inputs == "signal" and len(shape) != 2:
        raise ModelError(
            f"build_model({name!r}): expected in_shape (C, T) of a signal, received "
            f"{in_shape!r}. Give channels and length, e.g. (1, 2000) for 8 s at 250 Hz."
        )
    if entry.inputs == "image" and len(shape) != 3:
        raise ModelError(
            f"build_model({name!r}): expected in_shape (C, H, W), received {in_shape!r}. "
            "Give channels, height and width, e.g. (1, 28, 28) for MNIST."
        )
    num_classes = positive_int(num_classes, f"build_model({name!r}) num_classes")
    valid = model_options(name)
    for key in options:
        if key not in valid:
            raise ModelError(
                f"build_model({name!r}): unknown option {key!r}{did_you_mean(key, valid)}. "
                f"Valid options: {', '.join(valid) or 'none'}."
            )
    if entry.takes_shape:
        return entry.constructor(in_shape=shape, num_classes=num_classes, **options)
    return entry.constructor(in_channels=shape[0], num_classes=num_classes, **options)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters in ``model`` (by default only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ModelError(
            f"unknown model {name!r}{did_you_mean(str(name), MODELS)}. "
            f"Valid models: {', '.join(model_names())}."
        )
    return MODELS[name]
