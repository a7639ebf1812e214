"""A character-level language model, trained with truncated BPTT over carried state.

``CharLSTM`` is Embedding -> LSTM -> Linear: token ids (N, T) in, next-token logits
(N, T, V) out, with the LSTM state passed in and returned.

**The batches.** A text of token ids is cut into ``batch_size`` parallel streams, each a
contiguous piece of the text (stream b starts at ``b * stream_length``). Step k of a pass
reads columns ``k*T .. (k+1)*T`` of every stream, and the target is the next character.
The LSTM state at the end of step k is the initial state of step k+1, so each stream is
read as one long sequence; the gradient stops at the chunk boundary (the NumPy LSTM's
backward only goes through its last forward). The state starts at zero at the start of
each pass over the text. ``steps_per_epoch`` need not be a whole pass: an epoch is that
many steps, the next epoch continues where it stopped, and the carried state goes into
``last.npz`` with everything else, so a resumed run is the run that never stopped.

**Validation** reads the validation text the same way (``EVAL_STREAMS`` streams, carried
state, chunks of ``EVAL_CHUNK``), and reports the mean loss in nats per character and
the next-character accuracy over every predicted character.

Dependencies: NumPy only.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcc.atomic import remove_stale_temporaries
from dlcc.errors import DlccError, TrainingDiverged
from dlcc.numpy_nn import module as module_state
from dlcc.numpy_nn.layers import Embedding, Linear
from dlcc.numpy_nn.losses import CrossEntropyLoss, softmax
from dlcc.numpy_nn.module import Module
from dlcc.numpy_nn.optim import clip_grad_norm
from dlcc.numpy_nn.recurrent import LSTM
from dlcc.numpy_nn.train import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    _generator_state_to_array,
    _prefixed,
    _unprefixed,
    load_npz,
    progress_bar,
    save_npz_atomic,
)
from dlcc.runs.history import BestTracker, History

EVAL_STREAMS = 16
EVAL_CHUNK = 256
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "grad_norm",  # mean global gradient norm before clipping
    "lr",
    "seconds",
    "samples_per_second",  # characters per second of training
]


class CharLSTM(Module):
    """Embedding(V, E) -> LSTM(E, H, num_layers, batch_first) -> Linear(H, V).

    ``forward(ids (N, T) int, state=None) -> (logits (N, T, V), state)``; state is the
    LSTM's ``(h, c)``, each (num_layers, N, H). ``backward(grad_logits)`` fills the grads.
    The state_dict keys are torch's for the same three modules (``embedding.weight``,
    ``lstm.weight_ih_l0``, ..., ``head.weight``).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        dtype=np.float32,
    ):
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers, batch_first=True, dtype=dtype)
        self.head = Linear(hidden_size, vocab_size, dtype=dtype)

    def children(self):
        return iter((("embedding", self.embedding), ("lstm", self.lstm), ("head", self.head)))

    def forward(self, ids: np.ndarray, state=None):
        self.ids_shape = np.shape(ids)  # kept so that a backward before forward names this model
        hidden, state = self.lstm.forward(self.embedding.forward(ids), state)
        return self.head.forward(hidden), state

    def __call__(self, ids: np.ndarray, state=None):
        return self.forward(ids, state)

    def backward(self, grad_logits: np.ndarray) -> None:
        self.require_forward("ids_shape")
        self.embedding.backward(self.lstm.backward(self.head.backward(grad_logits)))
        return None


# ---- the batches --------------------------------------------------------------------------


class Streams:
    """`ids` cut into `batch_size` contiguous streams, read `seq_len` columns at a time."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        ids = np.asarray(ids, dtype=np.int64)
        self.length = (len(ids) - 1) // batch_size  # the columns of every stream
        if batch_size < 1 or seq_len < 1 or self.length < seq_len:
            raise DlccError(
                f"a text of {len(ids):,} characters is too short for {batch_size} streams of "
                f"at least {seq_len} characters: lower --batch-size or --seq-len"
            )
        used = batch_size * self.length
        self.inputs = ids[:used].reshape(batch_size, self.length)
        self.targets = ids[1 : used + 1].reshape(batch_size, self.length)
        self.seq_len = seq_len
        self.steps_per_pass = self.length // seq_len  # the ragged remainder is skipped

    def chunk(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), each (batch_size, seq_len), of global step `step` (0-based)."""
        start = (step % self.steps_per_pass) * self.seq_len
        end = start + self.seq_len
        return self.inputs[:, start:end], self.targets[:, start:end]

    def starts_pass(self, step: int) -> bool:
        return step % self.steps_per_pass == 0


@dataclass
class SequenceEval:
    loss: float  # mean nats per predicted character
    accuracy: float  # next-character top-1 accuracy
    characters: int


def evaluate_text(
    model: CharLSTM, ids: np.ndarray, *, streams: int = EVAL_STREAMS, chunk: int = EVAL_CHUNK
) -> SequenceEval:
    """Loss (nats/char) and accuracy of `model` on the text `ids`, read in `streams`
    streams with carried state. Every character but a remainder under `streams` is
    predicted once."""
    ids = np.asarray(ids, dtype=np.int64)
    streams = max(1, min(streams, len(ids) - 1))
    length = (len(ids) - 1) // streams
    if length < 1:
        raise DlccError(f"a text of {len(ids)} characters is too short to evaluate")
    inputs = ids[: streams * length].reshape(streams, length)
    targets = ids[1 : streams * length + 1].reshape(streams, length)
    loss_fn = CrossEntropyLoss(reduction="sum")
    total, correct, state = 0.0, 0, None
    for start in range(0, length, chunk):
        x, y = inputs[:, start : start + chunk], targets[:, start : start + chunk]
        logits, state = model.forward(x, state)
        total += float(loss_fn.forward(logits, y))
        correct += int(np.sum(logits.argmax(axis=-1) == y))
    count = streams * length
    return SequenceEval(total / count, correct / count, count)


# ---- sampling -----------------------------------------------------------------------------


def check_sampling(temperature: float, top_k: int | None = None) -> None:
    """One-line DlccErrors for settings no sampler can use (both tracks call this)."""
    if not temperature > 0:
        raise DlccError(
            f"--temperature must be > 0, got {temperature}: 1 samples the model's own "
            "distribution, lower is more conservative (0.01 is practically greedy)"
        )
    if top_k is not None and top_k < 1:
        raise DlccError(f"--top-k must be >= 1 (1: always the most likely), got {top_k}")


def draw_token(
    logits: np.ndarray, *, temperature: float, top_k: int | None, rng: np.random.Generator
) -> int:
    """One token id from ``softmax(logits / temperature)``, restricted to the `top_k` most
    likely ids when given (top_k=1 is greedy: the argmax, whatever the rng)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature  # (V,)
    if top_k is not None and top_k < len(scaled):
        if top_k == 1:
            return int(np.argmax(scaled))
        kth_largest = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled >= kth_largest, scaled, -np.inf)
    probabilities = softmax(scaled)
    return int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))


def sample_tokens(
    step,
    prime: np.ndarray,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """`length` token ids drawn one at a time after reading the ids `prime` (at least one).

    `step(ids (1, T) int64, state) -> (logits of the last position (V,), state)` runs any
    model, NumPy or torch: it is called once on the prime with state None, then once per
    drawn id with what it returned. Each id comes from `draw_token`. The same rng seed
    gives the same text.
    """
    check_sampling(temperature, top_k)
    prime = np.asarray(prime, dtype=np.int64).reshape(1, -1)
    if prime.size == 0:
        raise DlccError("sampling needs at least one character to start from (--prime)")
    logits, state = step(prime, None)
    drawn = np.empty(length, dtype=np.int64)
    for index in range(length):
        drawn[index] = draw_token(logits, temperature=temperature, top_k=top_k, rng=rng)
        logits, state = step(drawn[index : index + 1].reshape(1, 1), state)
    return drawn


def sample(
    model: CharLSTM,
    prime: np.ndarray,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """`length` token ids from the NumPy `model` after `prime` (see `sample_tokens`).

    Temperature 1 is the model's distribution, lower is more conservative (towards the most
    likely character; ``1e-3`` is practically greedy), higher more random.
    """

    def step(ids, state):
        logits, state = model.forward(ids, state)
        return logits[0, -1], state

    return sample_tokens(step, prime, length, temperature=temperature, top_k=top_k, rng=rng)


# ---- the loop -----------------------------------------------------------------------------


def fit_tbptt(
    model: CharLSTM,
    optimizer,
    train_ids: np.ndarray,
    val_ids: np.ndarray | None,
    *,
    epochs: int,
    batch_size: int,
    seq_len: int,
    steps_per_epoch: int | None = None,
    clip: float | None = 5.0,
    scheduler=None,
    time_budget: float | None = None,
    patience: int | None = None,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log=print,
) -> History:
    """Train `model` on `train_ids` with truncated BPTT; returns its `History`.

    One step: the next (batch_size, seq_len) chunk of every stream (see the module
    docstring), forward from the carried state, mean cross-entropy, backward through this
    chunk, `clip_grad_norm` to `clip` (None: no clipping), optimizer step, schedule step.
    An epoch is `steps_per_epoch` steps (None: one pass over the text), then validation
    on `val_ids`. "Best" is the lowest val_loss (train_loss without validation).
    `time_budget` (seconds of training and validation, summed over sessions) ends the
    epoch in progress early, once spent, and then the run; `history.stopped_early`
    is then True. Checkpoints as `dlcc.numpy_nn.train.fit`: last.npz each epoch (with the
    carried state and the step), best.npz at the best epoch.
    """
    streams = Streams(train_ids, batch_size, seq_len)
    steps_per_epoch = steps_per_epoch or streams.steps_per_pass
    monitor = "val_loss" if val_ids is not None else "train_loss"
    tracker = BestTracker(monitor, "min", patience=patience)
    loss_fn = CrossEntropyLoss()
    history = History(HISTORY_COLUMNS)
    module_state.manual_seed(seed)
    step, state = 0, None
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for name in (LAST_CHECKPOINT, BEST_CHECKPOINT):
            remove_stale_temporaries(checkpoint_dir / name)
        last = checkpoint_dir / LAST_CHECKPOINT
        if resume and last.exists():
            saved = load_tbptt_checkpoint(last, model, optimizer, scheduler)
            step, state, history = saved["step"], saved["state"], saved["history"]
            tracker.load_state_dict(saved["best_tracker"])
            log(f"resumed from {last} after epoch {len(history)} (step {step})")
    spent = float(sum(history.seconds)) if len(history) else 0.0
    out_of_time = bool(time_budget is not None and spent >= time_budget)

    start_epoch = history.epoch[-1] + 1 if len(history) else 1
    for epoch in range(start_epoch, epochs + 1):
        if tracker.should_stop or out_of_time:
            break
        started = time.perf_counter()
        model.train()
        loss_sum = norm_sum = 0.0
        correct = seen = steps = 0
        bar = progress_bar(
            range(steps_per_epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{epochs}",
            enabled=progress,
        )
        for _ in bar:
            if streams.starts_pass(step):
                state = None
            x, y = streams.chunk(step)
            optimizer.zero_grad()
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                logits, state = model.forward(x, state)
                loss = loss_fn.forward(logits, y)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {epoch}, step {step + 1} "
                    f"(lr={optimizer.lr:.3g}); try a lower --lr or a smaller --clip"
                )
            model.backward(loss_fn.backward())
            norm = clip_grad_norm(model.parameters(), clip) if clip else _grad_norm(model)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            steps += 1
            loss_sum += loss
            norm_sum += norm
            correct += int(np.sum(logits.argmax(axis=-1) == y))
            seen += y.size
            if steps % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / steps:.4f}")
            if time_budget is not None and spent + time.perf_counter() - started >= time_budget:
                out_of_time = True
                break
        bar.close()
        val = evaluate_text(model, val_ids) if val_ids is not None else None
        seconds = time.perf_counter() - started
        spent += seconds
        row = dict(
            epoch=epoch,
            train_loss=loss_sum / max(steps, 1),
            train_accuracy=correct / max(seen, 1),
            val_loss=val.loss if val is not None else None,
            val_accuracy=val.accuracy if val is not None else None,
            grad_norm=norm_sum / max(steps, 1),
            lr=float(optimizer.lr),
            seconds=seconds,
            samples_per_second=seen / max(seconds, 1e-9),
        )
        improved = tracker.update(epoch, row[monitor])
        history.append(**row)
        history.best_epoch = tracker.best_epoch
        history.stopped_early = tracker.stopped_early or out_of_time
        log(_summary(history.last(), out_of_time))
        if checkpoint_dir is not None:
            if improved:
                best = _prefixed("model.", model)
                best["meta.epoch"] = np.array(epoch)
                save_npz_atomic(checkpoint_dir / BEST_CHECKPOINT, best)
            arrays = _prefixed("model.", model)
            arrays.update(_prefixed("optimizer.", optimizer))
            if scheduler is not None:
                arrays.update(_prefixed("scheduler.", scheduler))
            arrays["meta.epoch"] = np.array(epoch)
            arrays["meta.step"] = np.array(step, dtype=np.int64)
            arrays["meta.state_h"], arrays["meta.state_c"] = state
            arrays["meta.library_rng"] = _generator_state_to_array(module_state.default_rng())
            arrays["meta.history"] = np.array(json.dumps(history.to_dict()))
            arrays["meta.best_tracker"] = np.array(json.dumps(tracker.state_dict()))
            save_npz_atomic(checkpoint_dir / LAST_CHECKPOINT, arrays)
    return history


def load_tbptt_checkpoint(path: Path, model: Module, optimizer=None, scheduler=None) -> dict:
    """Restore a `fit_tbptt` last.npz; returns step, state (h, c), history, best_tracker."""
    arrays = load_npz(path)
    try:
        model.load_state_dict(_unprefixed("model.", arrays))
        if optimizer is not None:
            optimizer.load_state_dict(_unprefixed("optimizer.", arrays))
        if scheduler is not None:
            scheduler.load_state_dict(_unprefixed("scheduler.", arrays))
        module_state.default_rng().bit_generator.state = json.loads(str(arrays["meta.library_rng"]))
        return dict(
            step=int(arrays["meta.step"]),
            state=(arrays["meta.state_h"], arrays["meta.state_c"]),
            history=History.from_dict(json.loads(str(arrays["meta.history"]))),
            best_tracker=json.loads(str(arrays["meta.best_tracker"])),
        )
    except (KeyError, ValueError) as error:
        raise DlccError(f"checkpoint {path} does not fit this run ({error})") from None


def _grad_norm(model: Module) -> float:
    return math.sqrt(sum(float(np.vdot(grad, grad)) for _, grad in model.parameters()))


def _summary(row: dict, out_of_time: bool) -> str:
    text = f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}"
    if row["val_loss"] is not None:
        text += f"  val loss {row['val_loss']:.4f} nats/char acc {row['val_accuracy']:.4f}"
    text += f"  |g| {row['grad_norm']:.2f}  {row['seconds']:.1f}s"
    return text + ("  (time budget spent)" if out_of_time else "")
