"""Language modelling: predict each next character; cross-entropy in nats per character.

Outputs (B, T, V) logits, targets (B, T) int64 token ids; targets equal to
`dlcc.training.sequence.IGNORE` (the padding at the end of the validation text) count for
nothing. The loss is the mean cross-entropy per character in nats; the metrics are the
next-character accuracy and bits per character (the loss / ln 2). "Best" is the lowest
val_loss.

The data come from `dlcc.training.sequence` (token streams read in order for recurrent
models, with their state carried between batches; shuffled windows for the Transformer).
The report writes `vocab.json` (the characters, index = token id, so sampling needs no
dataset) and `samples.txt`: text sampled from the trained model (`sample_text`, the same
sampler `dlcc text sample` and the NumPy track use).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

from dlcc.atomic import write_text_atomic
from dlcc.training.sequence import IGNORE, CarriedState, unwrap_stateful
from dlcc.training.tasks.base import Task

SAMPLE_LENGTH, SAMPLE_TEMPERATURE, SAMPLE_PRIME = 500, 0.8, "\n"


class LanguageModelTask(Task):
    """Outputs (B, T, V) next-token logits; targets (B, T) token ids (IGNORE: padding)."""

    name = "language_model"
    monitor = "val_loss"
    mode = "min"
    metric_names = ("accuracy", "bits_per_char")
    plots = ()
    # `dlcc train --overfit-batch`: rows that start with the same character from a zero state
    # can need different next characters, so 100% on one batch is not always possible
    overfit_pass = 0.95

    def __init__(
        self,
        vocab_size: int,
        vocab: list[str] | None = None,
        sample_length: int = SAMPLE_LENGTH,
        sample_temperature: float = SAMPLE_TEMPERATURE,
        sample_prime: str = SAMPLE_PRIME,
    ) -> None:
        self.vocab_size, self.vocab = vocab_size, vocab
        self.sample_length, self.sample_temperature = sample_length, sample_temperature
        self.sample_prime = sample_prime

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per (non-padding) character, in nats."""
        return F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    def count(self, targets: torch.Tensor) -> int:
        return int((targets != IGNORE).sum())

    def metrics(self, sync: bool) -> dict:
        return {
            "accuracy": TokenAccuracy(sync_on_compute=sync),
            "bits_per_char": BitsPerChar(sync_on_compute=sync),
        }

    @property
    def num_outputs(self) -> int:
        return self.vocab_size

    def reporter(self, data) -> LanguageModelReport:
        return LanguageModelReport(list(data.classes), self)


class TokenAccuracy(Metric):
    """The fraction of characters whose most likely next character is the right one."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("correct", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        real = targets != IGNORE
        self.correct += ((outputs.argmax(dim=-1) == targets) & real).sum()
        self.total += real.sum()

    def compute(self) -> torch.Tensor:
        return self.correct / self.total


class BitsPerChar(Metric):
    """Cross-entropy in bits per character: summed nats / characters / ln 2."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("nats", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        nats = F.cross_entropy(
            outputs.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum"
        )
        self.nats += nats.double()
        self.total += (targets != IGNORE).sum()

    def compute(self) -> torch.Tensor:
        return self.nats / self.total / math.log(2)


class LanguageModelReport:
    """vocab.json and samples.txt (text drawn from the model the test figures are of)."""

    def __init__(self, vocab: list[str], task: LanguageModelTask) -> None:
        self.vocab, self.task, self.model = vocab, task, None

    def update(self, inputs, outputs, targets) -> None:
        pass  # the figures are the loop's metrics; the report is made from the model

    def bind_model(self, model) -> None:
        self.model = model

    def write(self, run_dir: Path) -> dict:
        from dlcc.runs import strict_json

        write_text_atomic(run_dir / "vocab.json", strict_json({"vocab": self.vocab}))
        if self.model is None:
            return {}
        prime = self.task.sample_prime
        if any(char not in self.vocab for char in prime):
            prime = self.vocab[0]
        text = sample_text(
            self.model,
            self.vocab,
            prime,
            self.task.sample_length,
            temperature=self.task.sample_temperature,
            rng=np.random.default_rng(0),
        )
        write_text_atomic(run_dir / "samples.txt", text + "\n")
        return {}


# ---- sampling from a torch model ------------------------------------------------------------


@torch.no_grad()
def sample_text(
    model,
    vocab: list[str],
    prime: str,
    length: int,
    *,
    temperature: float = SAMPLE_TEMPERATURE,
    top_k: int | None = None,
    rng: np.random.Generator,
) -> str:
    """`prime` and `length` characters drawn after it from a torch language model.

    A recurrent model (``net(ids, state) -> (logits, state)``, possibly inside
    `CarriedState`) reads one new character per step with its state; a Transformer reads
    the last `context` characters each step. The drawing is the NumPy track's
    (`dlcc.numpy_nn.sequence.sample_tokens`), so the two sample alike.
    """
    from dlcc.numpy_nn.sequence import sample_tokens
    from dlcc.numpy_trainer.charlm import encode_prime

    net = unwrap_stateful(model)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    context = getattr(net, "context", None)
    stateful = isinstance(model, CarriedState)

    def step(ids: np.ndarray, state):
        tokens = torch.as_tensor(ids, device=device)
        if stateful:
            logits, state = net(tokens, state)
        else:  # state: the ids so far, of which the model reads the last `context`
            state = tokens if state is None else torch.cat([state, tokens], dim=1)
            logits = net(state[:, -context:] if context else state)
        return logits[0, -1].float().cpu().numpy(), state

    prime_ids = encode_prime(prime, vocab)
    try:
        drawn = sample_tokens(
            step, prime_ids, length, temperature=temperature, top_k=top_k, rng=rng
        )
    finally:
        net.train(was_training)
    return prime + "".join(vocab[int(i)] for i in drawn)
