"""Sequence models that find R-peaks in an ECG: (N, C, T) signal -> (N, 1, T) logits.

Every model is the same three stages; only the middle one changes:

    signal (N, C, T) ── front end ── body ── 1x1 head ── up-sample x4 ── logits (N, 1, T)
                        3 convs,     conv | lstm | gru
                        stride 4     (bidirectional, or causal)

- **Front end**: conv(k7) -> conv(k5, stride 2) -> conv(k5, stride 2), each BN + ReLU, so
  the body runs at a quarter of the input rate (62.5 Hz for the 250 Hz signals of
  `dlcc.ecg`): a 10 s window is 625 recurrent steps, not 2,500.
- **Body**:
  - ``conv``: residual blocks of dilated convolutions (dilation 1, 2, 4, 8, ...), the
    1-D conv baseline;
  - ``lstm`` / ``gru``: a recurrent network, bidirectional unless ``causal``;
  - ``transformer``: pre-LayerNorm Transformer blocks (`dlcc.models.attention`, the
    character model's code, here without the causal mask unless ``causal``), with
    sinusoidal or learned positions.
- **Head**: a 1x1 conv to one logit per step, up-sampled back to the input rate (linear
  interpolation, or repetition when causal) and cropped to T. The target is a heatmap
  (a Gaussian at each R-peak); ``head_bias`` starts the output near the heatmap's mean.

**Causal models** (``causal=True``) see no future sample: the convolutions are padded on the
left only and the recurrent body runs forwards. Such a model also runs on a stream:
`stream(chunk, state)` takes the next samples and returns their logits and the new state,
and the logits of a record fed chunk by chunk equal those of the whole record at once
(`tests/models/test_ecg_models.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.models.common import ModelError, dropout_probability, positive_int

BODIES = ("conv", "lstm", "gru", "transformer")
POSITIONS = ("sinusoidal", "learned")
MAX_STEPS = 1024  # learned positions: the longest body input (16 s at 250 Hz / 4)
STRIDE = 4  # the front end's total down-sampling


class Conv1dBN(nn.Module):
    """conv -> BN -> ReLU on (N, C_in, T) -> (N, C_out, ceil(T / stride)).

    Padded to keep T / stride samples: symmetrically, or on the left only when ``causal``.
    `step(x, buffer)` is the streaming form of a causal layer: ``buffer`` holds the last
    ``(kernel - 1) * dilation`` input samples, the left context the next chunk needs.
    """

    def __init__(self, c_in, c_out, kernel, stride=1, dilation=1, causal=False, relu=True):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.relu = relu
        self.causal = causal
        self.context = (kernel - 1) * dilation  # the input samples before the first output
        self.stride = stride

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self._finish(F.pad(x, (self.context, 0)))
        # "same" padding: T outputs for stride 1, T / s for stride s (T a multiple of s)
        left = self.context // 2
        return self._finish(F.pad(x, (left, self.context - left)))

    def step(self, x: torch.Tensor, buffer: torch.Tensor | None):
        """Streaming: (N, C_in, t) with t a multiple of the stride -> (outputs, new buffer)."""
        if buffer is None:
            buffer = x.new_zeros(x.shape[0], x.shape[1], self.context)
        joined = torch.cat([buffer, x], dim=2)
        return self._finish(joined), joined[:, :, joined.shape[2] - self.context :]


class FrontEnd(nn.Module):
    """(N, C, T) -> (N, width, T / 4): three conv-BN-ReLU layers, two of them strided."""

    def __init__(self, in_channels: int, width: int, causal: bool):
        super().__init__()
        self.layers = nn.ModuleList(
            [
                Conv1dBN(in_channels, width, 7, causal=causal),
                Conv1dBN(width, width, 5, stride=2, causal=causal),
                Conv1dBN(width, width, 5, stride=2, causal=causal),
            ]
        )

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def step(self, x, state):
        state = state or [None] * len(self.layers)
        new = []
        for layer, buffer in zip(self.layers, state, strict=True):
            x, buffer = layer.step(x, buffer)
            new.append(buffer)
        return x, new


class DilatedBlock(nn.Module):
    """x + conv(dilation d) -> conv(dilation d), on (N, width, S); the conv baseline's block."""

    def __init__(self, width: int, dilation: int, causal: bool, dropout: float):
        super().__init__()
        self.a = Conv1dBN(width, width, 3, dilation=dilation, causal=causal)
        self.b = Conv1dBN(width, width, 3, dilation=dilation, causal=causal, relu=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return F.relu(x + self.dropout(self.b(self.a(x))))

    def step(self, x, state):
        a_buffer, b_buffer = state or (None, None)
        h, a_buffer = self.a.step(x, a_buffer)
        h, b_buffer = self.b.step(h, b_buffer)
        return F.relu(x + h), (a_buffer, b_buffer)


class ConvBody(nn.Module):
    """(N, width, S) -> (N, width, S): ``layers`` dilated blocks, dilation 1, 2, 4, ..."""

    def __init__(self, width: int, layers: int, causal: bool, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            DilatedBlock(width, 2**i, causal, dropout) for i in range(layers)
        )
        self.out_channels = width

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def step(self, x, state):
        state = state or [None] * len(self.blocks)
        new = []
        for block, block_state in zip(self.blocks, state, strict=True):
            x, block_state = block.step(x, block_state)
            new.append(block_state)
        return x, new


class RecurrentBody(nn.Module):
    """(N, width, S) -> (N, hidden * directions, S): an LSTM or GRU over the S steps."""

    def __init__(self, cell: str, width: int, hidden: int, layers: int, causal: bool, dropout):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            width,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=not causal,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out_channels = hidden * (1 if causal else 2)

    def forward(self, x):
        out, _ = self.rnn(x.transpose(1, 2))  # (N, S, H * directions)
        return out.transpose(1, 2)

    def step(self, x, state):
        out, state = self.rnn(x.transpose(1, 2), state)
        return out.transpose(1, 2), state


class TransformerBody(nn.Module):
    """(N, width, S) -> (N, width, S): positions added, then pre-LN Transformer blocks."""

    def __init__(self, width, layers, heads, causal, dropout, positions):
        from dlcc.models.attention import Block, sinusoidal_positions

        super().__init__()
        if positions not in POSITIONS:
            raise ModelError(
                f"BeatNet positions: expected sinusoidal or learned, not {positions!r}"
            )
        if width % heads:
            raise ModelError(f"BeatNet transformer: width {width} must divide by heads {heads}")
        if positions == "learned":
            self.positions = nn.Parameter(torch.randn(MAX_STEPS, width) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(MAX_STEPS, width), False)
        self.blocks = nn.ModuleList(Block(width, heads, dropout, causal) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.out_channels = width

    def forward(self, x):
        steps = x.shape[2]
        if steps > MAX_STEPS:
            raise ModelError(
                f"BeatNet transformer: {steps * STRIDE} samples exceed its {MAX_STEPS * STRIDE}; "
                "detect in shorter windows"
            )
        h = x.transpose(1, 2) + self.positions[:steps]  # (N, S, width)
        for block in self.blocks:
            h = block(h)
        return self.norm(h).transpose(1, 2)


class BeatNet(nn.Module):
    """An R-peak detector: (N, in_channels, T) -> (N, 1, T) heatmap logits.

    Args:
        in_channels: ECG leads per input (1 for the shipped detector).
        num_classes: must be 1 (one heatmap); the registry passes it.
        body: "conv", "lstm", "gru" or "transformer".
        width: channels of the front end (and of the conv body).
        hidden: units per direction of the recurrent body.
        layers: dilated blocks (conv) or stacked recurrent layers.
        causal: no look-ahead; enables `stream`.
        dropout: in the body.
        head_bias: the head's starting bias (about log(p / (1 - p)) of the heatmap mean).
        heads, positions: the transformer body's attention heads and position encoding.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 1,
        body: str = "gru",
        width: int = 32,
        hidden: int = 64,
        layers: int = 2,
        causal: bool = False,
        dropout: float = 0.1,
        head_bias: float = -3.0,
        heads: int = 4,
        positions: str = "sinusoidal",
    ):
        super().__init__()
        if num_classes != 1:
            raise ModelError(
                f"BeatNet predicts one heatmap: num_classes must be 1, not {num_classes}"
            )
        if body not in BODIES:
            raise ModelError(
                f"BeatNet body: expected one of {', '.join(BODIES)}, received {body!r}"
            )
        width = positive_int(width, "BeatNet width")
        layers = positive_int(layers, "BeatNet layers")
        dropout = dropout_probability(dropout, "BeatNet dropout")
        self.in_channels = positive_int(in_channels, "BeatNet in_channels")
        self.causal = bool(causal)
        self.front = FrontEnd(in_channels, width, self.causal)
        self.body_name = body
        if body == "conv":
            self.body = ConvBody(width, layers, self.causal, dropout)
        elif body == "transformer":
            heads = positive_int(heads, "BeatNet heads")
            self.body = TransformerBody(width, layers, heads, self.causal, dropout, positions)
        else:
            hidden = positive_int(hidden, "BeatNet hidden")
            self.body = RecurrentBody(body, width, hidden, layers, self.causal, dropout)
        self.head = nn.Conv1d(self.body.out_channels, 1, 1)
        nn.init.constant_(self.head.bias, float(head_bias))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.in_channels or not x.is_floating_point():
            raise ModelError(
                f"BeatNet: expected a float signal batch (N, {self.in_channels}, T), received "
                f"{x.dtype} {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        length = x.shape[2]
        padded = math.ceil(length / STRIDE) * STRIDE
        if padded != length:  # on the right, so a causal model's outputs do not move
            x = F.pad(x, (0, padded - length))
        logits = self.head(self.body(self.front(x)))  # (N, 1, T / 4)
        return self._upsample(logits)[:, :, :length]

    def _upsample(self, logits: torch.Tensor) -> torch.Tensor:
        if self.causal:  # each coarse step covers the 4 samples it has seen
            return logits.repeat_interleave(STRIDE, dim=2)
        return F.interpolate(logits, scale_factor=STRIDE, mode="linear", align_corners=False)

    @torch.no_grad()
    def stream(self, chunk: torch.Tensor, state=None):
        """The next ``chunk`` (N, C, t) of a stream, t a multiple of 4 -> (logits, state).

        Start with ``state=None``; pass the returned state with the next chunk. Only causal
        models stream, and only in eval mode (BN uses its running statistics).
        """
        if not self.causal or self.body_name == "transformer":
            raise ModelError(
                "BeatNet.stream: only a causal conv, LSTM or GRU model (causal: true) can stream"
            )
        if self.training:
            raise ModelError("BeatNet.stream: call model.eval() first")
        self._check(chunk)
        if chunk.shape[2] % STRIDE:
            raise ModelError(
                f"BeatNet.stream: chunk length must be a multiple of {STRIDE}, "
                f"received {chunk.shape[2]}"
            )
        front_state, body_state = state or (None, None)
        x, front_state = self.front.step(chunk, front_state)
        x, body_state = self.body.step(x, body_state)
        return self._upsample(self.head(x)), (front_state, body_state)
