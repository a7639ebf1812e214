"""Models by name, so a recipe can say ``model: small_cnn`` with options beside it.

    build_model("small_cnn", (3, 32, 32), 10, widths=[32, 64], depthwise=True)
    build_model("char_gpt", (256,), 65, layers=4)   # tokens: in_shape (T,), 65 characters

An entry declares its input kind. Image models take the image shape (C, H, W) and the number
of classes; token models (``inputs="tokens"``) take in_shape (T,), the sequence length, and
num_classes = the vocabulary size, which reach the constructor as `vocab_size` (and `context`
= T, when it has that argument). The valid options of each name are the remaining keyword
arguments of its class or function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dlcc.models.charlm import CharGPT, CharRNN
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
    takes_shape: bool  # True: gets in_shape=(C, H, W) (tokens: context=T); False: in_channels=C
    summary: str  # one line for listings
    output: str = "classes"  # "classes": (N, num_classes); "dense": (N, num_classes, H, W);
    # "sequence": (N, T, num_classes); "signal": (N, num_classes, T), a value per sample
    inputs: str = "images"  # "images": (N, C, H, W) floats; "signal": (N, C, T) floats;
    # "tokens": (N, T) int64 ids
    stateful: bool = False  # forward(x, state) -> (outputs, state): a recurrent state to carry


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLP, True, "flatten -> Linear/ReLU/Dropout -> Linear"),
    "small_cnn": ModelEntry(SmallCNN, False, "conv-BN-ReLU blocks, strided, global pool"),
    "preact_resnet": ModelEntry(PreActResNet, False, "pre-activation ResNet (default: 18)"),
    "resnet20": ModelEntry(resnet20, False, "CIFAR ResNet-20 of He et al. (0.27M params)"),
    "small_fcn": ModelEntry(SmallFCN, False, "conv-BN-ReLU blocks at full size, 1x1 head", "dense"),
    "unet": ModelEntry(UNet, False, "U-Net: encoder-decoder with skips, any input size", "dense"),
    "beatnet": ModelEntry(
        BeatNet, False, "1-D R-peak detector: conv front end, conv/LSTM/GRU/Transformer body",
        "signal", inputs="signal",
    ),
    "char_rnn": ModelEntry(
        CharRNN, False, "character LSTM/GRU: embedding, stacked cells, linear head",
        "sequence", inputs="tokens", stateful=True,
    ),
    "char_gpt": ModelEntry(
        CharGPT, True, "character Transformer: causal pre-LayerNorm blocks", "sequence",
        inputs="tokens",
    ),
}  # fmt: skip

# Arguments the registry fills in itself; everything else a constructor takes is an option.
_SUPPLIED = ("in_shape", "in_channels", "num_classes", "vocab_size", "context")


def model_names(output: str | None = None) -> list[str]:
    """The names ``build_model`` accepts, sorted; `output` keeps "classes", "dense" or
    "sequence" ones."""
    return sorted(name for name, entry in MODELS.items() if output in (None, entry.output))


def model_options(name: str) -> dict[str, object]:
    """The options of model ``name`` and their defaults, e.g. {"hidden": (512, 256), ...}."""
    entry = _entry(name)
    parameters = inspect.signature(entry.constructor).parameters
    return {key: p.default for key, p in parameters.items() if key not in _SUPPLIED}


def build_model(name: str, in_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build model ``name`` for inputs of shape ``in_shape``.

    Image models: in_shape (C, H, W); an nn.Module mapping (N, C, H, W) to (N, num_classes)
    (or (N, num_classes, H, W) for dense ones). Token models: in_shape (T,), num_classes the
    vocabulary size; (N, T) int64 ids to (N, T, num_classes) logits.
    Raises ModelError, with the valid choices, for an unknown name or option.
    """
    entry = _entry(name)
    layouts = {"tokens": "(T,)", "signal": "(C, T)", "images": "(C, H, W)"}
    shape = positive_ints(in_shape, f"build_model({name!r}) in_shape {layouts[entry.inputs]}")
    if entry.inputs == "tokens" and len(shape) != 1:
        raise ModelError(
            f"build_model({name!r}): a token model expects in_shape (T,), the sequence "
            f"length, received {in_shape!r}. Train it on a text dataset, e.g. tinyshakespeare."
        )
    if entry.inputs == "signal" and len(shape) != 2:
        raise ModelError(
            f"build_model({name!r}): expected in_shape (C, T) of a signal, received "
            f"{in_shape!r}. Give channels and length, e.g. (1, 2000) for 8 s at 250 Hz."
        )
    if entry.inputs == "images" and len(shape) != 3:
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
    if entry.inputs == "tokens":
        if entry.takes_shape:  # it has a fixed context: the sequence length
            return entry.constructor(vocab_size=num_classes, context=shape[0], **options)
        return entry.constructor(vocab_size=num_classes, **options)
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
