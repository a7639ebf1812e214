"""What the PyTorch models share: their error type, argument and input checks, and the
weight initialisation of the convolutional networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlcc.errors import DlccError


class ModelError(DlccError):
    """A model was asked for with a bad name, option or input."""


def positive_int(value, what: str) -> int:
    """Return ``value`` as an int, or raise ModelError if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{what}: expected a positive integer, received {value!r}.")
    return value


def positive_ints(values, what: str) -> tuple[int, ...]:
    """Return a non-empty sequence of positive integers (a YAML list is fine) as a tuple."""
    if isinstance(values, int) and not isinstance(values, bool):
        values = (values,)
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ModelError(
            f"{what}: expected a non-empty list of positive integers, received {values!r}."
        )
    return tuple(positive_int(value, f"{what} entry") for value in values)


def dropout_probability(value, what: str = "dropout") -> float:
    """Return ``value`` as a float in [0, 1), or raise ModelError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ModelError(f"{what}: expected a probability in [0, 1), received {value!r}.")
    return float(value)


def check_images(x: torch.Tensor, in_channels: int, model_name: str) -> None:
    """Raise ModelError unless ``x`` is a floating-point image batch (N, in_channels, H, W).

    The check costs nothing next to a convolution and turns PyTorch's deep shape errors
    into a message that names the model and the tensor it expected. It is skipped while
    torch.jit.trace records the model, where the shapes are fixed by the example input.
    """
    if torch.jit.is_tracing():
        return
    if not isinstance(x, torch.Tensor):
        raise ModelError(
            f"{model_name}: expected a torch.Tensor (N, {in_channels}, H, W), "
            f"received {type(x).__name__}. Convert with torch.as_tensor(...)."
        )
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ModelError(
            f"{model_name}: expected images of shape (N, {in_channels}, H, W), received "
            f"{tuple(x.shape)}. Add a batch axis with x.unsqueeze(0) for one image, or build "
            f"the model with in_channels={x.shape[1] if x.dim() == 4 else '...'}."
        )
    if not x.is_floating_point():
        raise ModelError(
            f"{model_name}: expected floating-point images, received dtype {x.dtype}. "
            "Convert with x.float() (and scale uint8 pixels to [0, 1])."
        )


def conv_fan_out(conv: nn.Conv2d) -> int:
    """How many outputs each input value feeds: (out_channels / groups) * kh * kw.

    For an ordinary conv this equals PyTorch's own fan_out. For a depthwise conv
    (groups == in_channels == out_channels) it is kh * kw, where PyTorch's
    ``kaiming_normal_`` would use out_channels * kh * kw and start the layer far too small.
    """
    kernel_height, kernel_width = conv.kernel_size
    return conv.out_channels // conv.groups * kernel_height * kernel_width


def init_weights_(model: nn.Module) -> None:
    """Initialise every layer of ``model`` in place, the usual way for ReLU conv nets.

    - Conv2d: He normal (He et al. 2015), fan_out mode: std = sqrt(2 / fan_out), bias 0.
    - Linear: Xavier (Glorot) uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), bias 0.
    - BatchNorm2d: weight 1, bias 0, so each block starts as conv -> ReLU.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, mean=0.0, std=math.sqrt(2.0 / conv_fan_out(module)))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
