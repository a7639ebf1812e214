"""What is exported: a model as one traceable function of one input, and its axes.

Every exported file maps one input tensor to one output tensor of logits:

    kind     input                 output (by the registry's `output`)
    images   (N, C, H, W) float32  (N, K) classes, or (N, K, H, W) dense
    signal   (N, C, T) float32     (N, 1, T) heatmap logits (BeatNet)
    tokens   (N, T) int64          (N, T, V) next-token logits

Both exporters trace the model (TorchScript's `torch.jit.trace`, and ONNX's TorchScript-based
exporter), so a Python ``if`` on a size is frozen at the traced size. `serving_module` wraps
the models whose forward has such a branch so that the graph holds for every size it
claims: the U-Net and BeatNet pad to their multiple with traced arithmetic (always, by 0 when
nothing is missing) and crop back; a stateful CharRNN returns its logits only (every call
starts from a zero state).

What is dynamic (`dynamic_axes`), checked at export on other sizes than the traced one:
- the batch, always;
- height and width of fully convolutional models (small_fcn, unet; a U-Net's at least
  2**depth, as its reflection padding needs);
- the length of signals (BeatNet; the Transformer body up to `MAX_STEPS * 4` samples) and of
  token sequences (CharGPT up to its context).
Classifiers (mlp, small_cnn, resnets) keep their trained (C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.models.registry import MODELS

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class Axis:
    """A dynamic axis of the input: `index` into its shape, the sizes it accepts."""

    name: str  # batch, height, width, length
    index: int
    minimum: int = 1
    maximum: int | None = None
    output_index: int | None = None  # the output axis that follows it, if any

    def to_dict(self) -> dict:
        return {"name": self.name, "axis": self.index, "min": self.minimum, "max": self.maximum}


@dataclass
class ServingSpec:
    """How a model is exported: the module to trace, its input kind and dynamic axes."""

    module: nn.Module  # forward(input) -> logits, eval mode, on the CPU
    kind: str  # images | signal | tokens
    output: str  # classes | dense | signal | sequence (the registry's layout)
    in_shape: tuple[int, ...]  # one sample's trained shape, e.g. (1, 28, 28)
    vocab_size: int | None = None  # tokens: ids must be < vocab_size
    axes: list[Axis] = field(default_factory=list)

    @property
    def dtype(self) -> str:
        return "int64" if self.kind == "tokens" else "float32"

    def input_shape(self) -> list:
        """The input's shape with dynamic axes named: ["batch", 1, 28, 28]."""
        shape: list = [None, *self.in_shape]
        for axis in self.axes:
            shape[axis.index] = axis.name
        return shape

    def output_axes(self) -> dict[int, str]:
        return {a.output_index: a.name for a in self.axes if a.output_index is not None}

    def sample(self, batch: int, sizes: dict[str, int] | None = None, seed: int = 0):
        """A random input of `batch` samples; `sizes` replaces dynamic axes by name.

        Floats are N(0, 1), the scale of standardised inputs; tokens are uniform ids.
        """
        shape = [batch, *self.in_shape]
        for axis in self.axes:
            if sizes and axis.name in sizes:
                shape[axis.index] = sizes[axis.name]
        generator = torch.Generator().manual_seed(seed)
        if self.kind == "tokens":
            return torch.randint(0, self.vocab_size, shape, generator=generator)
        return torch.randn(shape, generator=generator)

    def other_sizes(self) -> dict[str, int]:
        """Sizes of the non-batch dynamic axes unlike the traced ones, within their range:
        what the export's check runs on to show the axes really are dynamic."""
        sizes = {}
        for axis in self.axes:
            if axis.name == "batch":
                continue
            traced = self.in_shape[axis.index - 1]
            other = traced + 3 if axis.maximum is None or traced + 3 <= axis.maximum else None
            if other is None:
                other = max(axis.minimum, traced - 3)
            sizes[axis.name] = other
        return sizes


class LogitsOnly(nn.Module):
    """A stateful model ``(x) -> (logits, state)`` as ``x -> logits`` (a zero start state)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


class PaddedToMultiple(nn.Module):
    """Pads the last `dims` axes up to a multiple of `multiple`, runs `model`, crops back.

    The model pads inside its forward as well, but behind a Python ``if`` that tracing would
    freeze; here the padding is arithmetic on the traced sizes (0 where nothing is missing),
    so the exported graph pads every size the same way the eager model does: reflection for
    images (the U-Net's rule for inputs of at least `multiple`), zeros for signals.
    """

    def __init__(self, model: nn.Module, multiple: int, dims: int, mode: str):
        super().__init__()
        self.model, self.multiple, self.dims, self.mode = model, multiple, dims, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[-self.dims :]
        padding: list = []
        for size in reversed(sizes):  # F.pad lists the last axis first
            padding += [0, (size + self.multiple - 1) // self.multiple * self.multiple - size]
        if self.mode == "constant":
            x = F.pad(x, padding)
        else:
            x = F.pad(x, padding, mode=self.mode)
        out = self.model(x)
        if self.dims == 1:
            return out[..., : sizes[0]]
        return out[..., : sizes[0], : sizes[1]]


def serving_spec(
    model: nn.Module, model_name: str, in_shape: tuple[int, ...], num_classes: int
) -> ServingSpec:
    """The `ServingSpec` of a built registry model (eval mode, CPU).

    `num_classes` is the vocabulary size for token models (ids must be below it).
    """
    from dlcc.models.ecg import MAX_STEPS, STRIDE
    from dlcc.training.sequence import unwrap_stateful

    entry = MODELS[model_name]
    model = unwrap_stateful(model).eval()
    batch = Axis("batch", 0, output_index=0)
    in_shape = tuple(int(size) for size in in_shape)
    spec = ServingSpec(model, entry.inputs, entry.output, in_shape, axes=[batch])
    if entry.stateful:
        spec.module = LogitsOnly(model)
    if entry.inputs == "tokens":
        spec.vocab_size = num_classes
        maximum = getattr(model, "context", None)
        spec.axes.append(Axis("length", 1, maximum=maximum, output_index=1))
    elif entry.inputs == "signal":
        transformer = getattr(model, "body_name", None) == "transformer"
        maximum = MAX_STEPS * STRIDE if transformer else None
        spec.axes.append(Axis("length", 2, maximum=maximum, output_index=2))
        spec.module = PaddedToMultiple(model, STRIDE, 1, "constant")
    elif entry.output == "dense":
        depth = getattr(model, "depth", None)
        minimum = 2**depth if depth else 1
        spec.axes.append(Axis("height", 2, minimum=minimum, output_index=2))
        spec.axes.append(Axis("width", 3, minimum=minimum, output_index=3))
        if depth:
            spec.module = PaddedToMultiple(model, 2**depth, 2, "reflect")
    spec.module.eval()
    return spec
