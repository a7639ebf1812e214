"""Sequence data on the one loop: text as token chunks, and a recurrent state carried between
batches (truncated backpropagation through time), with no sequence code in the loop.

Two ways to cut a text of token ids into (inputs, targets) pairs, targets = inputs shifted
by one character:

- `TokenStreams` (``data.sequential: true``, for recurrent models): the text is B parallel
  streams, one per batch row, read in order; batch i holds chunk i of every stream, so the
  state a model ends chunk i with is the right start for chunk i + 1. The dataset says
  ``sequential = True``: the loop then draws it in order (`dlcc.training.data.train_sampler`)
  and a stateful model is wrapped in `CarriedState`.
- `TokenWindows` (``data.sequential: false``, for the Transformer): windows of `seq_len`
  characters every `stride` characters, shuffled like any other dataset.

`CarriedState` wraps a model whose forward is ``(x, state) -> (outputs, state)``: it feeds
each batch the state the previous batch ended with, detached (gradients flow within a chunk
only), and `reset_carried_state` zeroes it. The loop calls that at the start of every
training epoch and of every evaluation, so the carried state belongs to the epoch: a
checkpoint at an epoch's end needs none of it, and resume stays exact. The validation text
is evaluated in full (the last chunk padded with ``IGNORE`` targets), with the state carried
over it as well.

DDP: streams would have to be sharded per rank for evaluation as well as training; that is
not done, so a sequential dataset refuses to train on more than one process.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dlcc.training.config import ConfigError

IGNORE = -100  # target id of padding: no loss, no metric (F.cross_entropy's ignore_index)


class TokenStreams(torch.utils.data.Dataset):
    """`streams` parallel streams over `ids`, in chunks of `seq_len`; item k is chunk k // B
    of stream k % B, so B consecutive items are one batch: the same chunk of every stream.

    inputs (seq_len,) int64 and targets (seq_len,) int64 (the next character). With `pad`,
    every character of the text is predicted once: the streams are rounded up and the end
    padded with IGNORE targets (evaluation); without it the remainder is dropped (training).
    """

    sequential = True

    def __init__(self, ids: np.ndarray, streams: int, seq_len: int, pad: bool = False):
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        pairs = len(ids) - 1  # (input, target) pairs in the text
        length = math.ceil(pairs / streams) if pad else pairs // streams
        chunks = math.ceil(length / seq_len) if pad else length // seq_len
        if chunks < 1:
            raise ConfigError(
                f"a text of {len(ids):,} characters is too short for {streams} streams of "
                f"{seq_len} characters; lower data.batch_size or data.seq_len"
            )
        total = chunks * seq_len * streams if pad else streams * length
        inputs = torch.zeros(total, dtype=torch.int64)
        targets = torch.full((total,), IGNORE, dtype=torch.int64)
        used = min(pairs, total)
        inputs[:used], targets[:used] = ids[:used], ids[1 : used + 1]
        per_stream = total // streams
        inputs, targets = inputs.view(streams, per_stream), targets.view(streams, per_stream)
        span = chunks * seq_len  # without padding: the whole chunks of each stream
        self.inputs = inputs[:, :span].reshape(streams, chunks, seq_len)  # (B, chunks, T)
        self.targets = targets[:, :span].reshape(streams, chunks, seq_len)
        self.streams, self.chunks, self.seq_len = streams, chunks, seq_len

    def __len__(self) -> int:
        return self.streams * self.chunks

    def __getitem__(self, index: int):
        chunk, stream = divmod(index, self.streams)
        return self.inputs[stream, chunk], self.targets[stream, chunk]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices)
        chunk, stream = index // self.streams, index % self.streams
        return self.inputs[stream, chunk], self.targets[stream, chunk]  # (B, T), (B, T)


class TokenWindows(torch.utils.data.Dataset):
    """Windows of `seq_len` characters starting every `stride`; inputs and targets (seq_len,).

    With `pad` the last window runs past the end, padded with IGNORE targets, so that every
    character is predicted once when stride == seq_len (evaluation).
    """

    sequential = False

    def __init__(self, ids: np.ndarray, seq_len: int, stride: int | None = None, pad=False):
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        stride = stride or seq_len
        pairs = len(ids) - 1
        count = math.ceil(pairs / stride) if pad else (pairs - seq_len) // stride + 1
        if pairs < 1 or count < 1:
            raise ConfigError(
                f"a text of {len(ids):,} characters is shorter than data.seq_len {seq_len}"
            )
        padded = (count - 1) * stride + seq_len
        self.inputs = torch.zeros(padded, dtype=torch.int64)
        self.targets = torch.full((padded,), IGNORE, dtype=torch.int64)
        used = min(pairs, padded)
        self.inputs[:used], self.targets[:used] = ids[:used], ids[1 : used + 1]
        self.starts = torch.arange(count) * stride
        self.offsets = torch.arange(seq_len)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int):
        inputs, targets = self.__getitems__([index])
        return inputs[0], targets[0]

    def __getitems__(self, indices: list[int]):
        positions = self.starts[torch.as_tensor(indices)].unsqueeze(1) + self.offsets  # (B, T)
        return self.inputs[positions], self.targets[positions]


class CarriedState(nn.Module):
    """Runs a stateful model ``net(x, state) -> (outputs, state)`` as ``outputs = model(x)``.

    With `carry`, each call starts from the state the previous call ended with, detached;
    otherwise every batch starts from zeros. The state is not a buffer: it is not saved and
    DDP does not broadcast it.
    """

    def __init__(self, net: nn.Module, carry: bool = True):
        super().__init__()
        self.net, self.carry = net, carry
        self.state = None

    def reset_state(self) -> None:
        self.state = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        state = self.state if self.carry and _batch_of(self.state) == len(inputs) else None
        outputs, state = self.net(inputs, state)
        if self.carry:
            self.state = _detach(state)
        return outputs


def reset_carried_state(model: nn.Module) -> None:
    """Zero the carried state of every `CarriedState` in `model` (also under DDP/compile);
    anything that is not an nn.Module (a test's stand-in model) carries none."""
    if not isinstance(model, nn.Module):
        return
    for module in model.modules():
        if isinstance(module, CarriedState):
            module.reset_state()


def unwrap_stateful(model: nn.Module) -> nn.Module:
    """The model inside a `CarriedState`, or `model` itself."""
    return model.net if isinstance(model, CarriedState) else model


def _detach(state):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return tuple(_detach(part) for part in state)


def _batch_of(state) -> int | None:
    """The batch size of a carried state (tensors are (layers, B, H)); None when empty."""
    if state is None:
        return None
    first = state if isinstance(state, torch.Tensor) else state[0]
    return first.shape[1]


# ---- text datasets through load_data ------------------------------------------------------


def is_text_dataset(name: str) -> bool:
    from dlcc.data.registry import DATASETS
    from dlcc.data.text import GENERATED

    return name in GENERATED or (name in DATASETS and DATASETS[name].file_format == "text")


def load_text_data(data):
    """A text corpus (`dlcc.data.text.load_corpus`) as a `DataBundle` of token chunks.

    classes = the vocabulary (index = token id), in_shape = (seq_len,). The corpus has no
    test split: `test` is the validation text (the last 10%), as in the NumPy track, so the
    test figures of metrics.json are the validation text read by the best checkpoint.
    """
    from dlcc.data.text import load_corpus
    from dlcc.training.data import DataBundle

    if data.val_size is not None:
        raise ConfigError(
            "data.val_size: a text corpus has a fixed split (the last 10% is validation); "
            "remove data.val_size"
        )
    if data.augment:
        raise ConfigError("data.augment is for images; a text dataset takes none")
    corpus = load_corpus(data.dataset, data.data_dir)
    if data.sequential:
        train = TokenStreams(corpus.train, data.batch_size, data.seq_len)
        val = TokenStreams(corpus.val, data.eval_batch_size, data.seq_len, pad=True)
    else:
        train = TokenWindows(corpus.train, data.seq_len, data.stride)
        val = TokenWindows(corpus.val, data.seq_len, pad=True)
    return DataBundle(
        train=train,
        val=val,
        test=val,
        classes=list(corpus.vocab),
        in_shape=(data.seq_len,),
        mean=[],
        std=[],
    )
