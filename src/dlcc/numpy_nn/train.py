"""The training loop: `fit` and `evaluate`, readable from top to bottom.

One epoch is: shuffle, then for each mini-batch
    `train_step` (forward -> loss -> backward -> L2 term -> optimizer step) -> schedule step,
then evaluate on the validation split, save a checkpoint, and maybe stop early.

Everything a run needs to continue exactly where it stopped (weights, optimiser and
schedule state, both random generators, the history) goes into one ``.npz`` file,
written atomically, so ``fit(..., resume=True)`` after a crash ends with the same
weights as a run that never stopped.

Dependencies: NumPy, plus tqdm for the progress bar.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dlcc.atomic import atomic_write, remove_stale_temporaries, write_text_atomic
from dlcc.errors import DlccError
from dlcc.numpy_nn import module as module_state
from dlcc.numpy_nn.module import Module

LAST_CHECKPOINT = "last.npz"
BEST_CHECKPOINT = "best.npz"


class TrainingDiverged(DlccError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class History:
    """Per-epoch metrics. Every list has one entry per completed epoch."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2))


@dataclass
class EvalResult:
    """Mean loss, accuracy and the predicted class of every sample, shape (N,)."""

    loss: float
    accuracy: float
    predictions: np.ndarray


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` all-or-nothing: a crash mid-write never leaves a bad checkpoint."""
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load a checkpoint, turning a corrupt or truncated file into a clear DlccError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DlccError(f"checkpoint {path} does not exist") from None
    except Exception as error:  # zipfile.BadZipFile, ValueError, EOFError, OSError, ...
        raise DlccError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {error}). "
            "It may be truncated or from another program; delete it to start afresh."
        ) from None


def _generator_state_to_array(generator: np.random.Generator) -> np.ndarray:
    return np.array(json.dumps(generator.bit_generator.state))


def _generator_from_array(array: np.ndarray) -> np.random.Generator:
    generator = np.random.default_rng()
    generator.bit_generator.state = json.loads(str(array))
    return generator


def l2_penalty_parameters(model: Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (param, grad) pairs L2 regularisation applies to: weight matrices and conv
    kernels. Biases and normalisation scales are left alone, as is usual."""
    return [
        (param, grad)
        for name, param, grad in model.named_parameters()
        if name.rsplit(".", 1)[-1] == "weight" and param.ndim >= 2
    ]


def add_l2_penalty(model: Module, l2: float) -> float:
    """L2 regularisation (weight decay) of the weights `l2_penalty_parameters` selects.

    The penalty is ``l2 / 2 * sum_W ||W||^2`` (W over weight matrices and kernels; biases
    are not penalised); its gradient, ``l2 * W``, is added into each W's grad in place.
    Call it after ``model.backward`` and before ``optimizer.step``. Returns the penalty as
    a Python float (`fit` reports the data loss alone; the value is for your own logs).
    """
    weights = l2_penalty_parameters(model)  # (param, grad) pairs
    # BEGIN SOLUTION add_l2_penalty: penalty l2/2 * sum ||W||^2, and l2 * W added to grads
    penalty = 0.0
    for param, grad in weights:
        penalty += 0.5 * l2 * float(np.vdot(param, param))
        grad += l2 * param
    return penalty
    # END SOLUTION
    # BEGIN PROMPT
    # weights is a list of (param, grad) array pairs. Add the penalty's gradient to each
    # grad IN PLACE (grad += ...: the optimiser reads these very arrays) and return the
    # penalty itself as a float.
    # END PROMPT


def train_step(
    model: Module, loss_fn, optimizer, x_batch: np.ndarray, y_batch: np.ndarray, l2: float = 0.0
) -> tuple[float, np.ndarray]:
    """One step of mini-batch gradient descent: the heart of `fit`.

    x_batch (B, ...) in the model's dtype; y_batch (B,) integer labels. ``l2 > 0`` adds
    the L2 penalty's gradient (`add_l2_penalty`) before the update.
    Returns (loss, logits): the batch's data loss (a float) and the model output (B, C).
    A non-finite loss is returned without updating anything (`fit` then stops).
    """
    # BEGIN SOLUTION train_step: zero the grads, forward, loss, backward, L2, optimizer step
    optimizer.zero_grad()
    # Overflow shows up as a non-finite loss, which `fit` reports with context.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logits = model.forward(x_batch)
        loss = loss_fn.forward(logits, y_batch)
    if not math.isfinite(loss):
        return loss, logits
    model.backward(loss_fn.backward())
    if l2 > 0:
        add_l2_penalty(model, l2)
    optimizer.step()
    return loss, logits
    # END SOLUTION
    # BEGIN PROMPT
    # Grads accumulate (+=) across backward calls, so clear them first
    # (optimizer.zero_grad()). Then: logits = model.forward(x_batch); the loss with
    # loss_fn.forward(logits, y_batch); model.backward(...) with the loss's gradient from
    # loss_fn.backward(); add_l2_penalty(model, l2) when l2 > 0; optimizer.step().
    # Return (loss, logits).
    # END PROMPT


def iterate_minibatches(x, y, batch_size, rng: np.random.Generator | None):
    """Yield (x_batch, y_batch); shuffled with ``rng``, or in order when it is None."""
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def evaluate(
    model: Module,
    loss_fn,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 1000,
    progress: bool = False,
):
    """Loss and accuracy of ``model`` on (x, y) in eval mode, in batches.

    x (N, ...) in the model's dtype; y (N,) integer labels. Returns an `EvalResult`.
    The model is put back into the mode it was in.
    """
    was_training = model.training
    model.eval()
    total_loss, predictions = 0.0, []
    batches = tqdm(
        iterate_minibatches(x, y, batch_size, rng=None),
        total=math.ceil(len(x) / batch_size),
        desc="evaluate",
        disable=None if progress else True,
        leave=False,
        unit="batch",
    )
    try:
        for x_batch, y_batch in batches:
            logits = model.forward(x_batch)
            total_loss += loss_fn.forward(logits, y_batch) * len(x_batch)
            predictions.append(logits.argmax(axis=1))
    finally:
        model.train(was_training)
    predictions = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
    accuracy = float(np.mean(predictions == y)) if len(y) else float("nan")
    return EvalResult(loss=total_loss / max(len(x), 1), accuracy=accuracy, predictions=predictions)


def fit(
    model: Module,
    loss_fn,
    optimizer,
    train_data: tuple[np.ndarray, np.ndarray],
    val_data: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    epochs: int,
    batch_size: int = 64,
    scheduler=None,
    l2: float = 0.0,
    early_stopping_patience: int | None = None,
    overfit_one_batch: bool = False,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log=print,
) -> History:
    """Train ``model`` with mini-batch gradient descent and return its `History`.

    - ``train_data`` = (x (N, ...), y (N,)); ``val_data`` likewise, optional.
    - ``scheduler`` is stepped once per batch (OneCycle, cosine with warm-up).
    - ``l2`` adds ``l2/2 * ||W||^2`` over weight matrices/kernels to the loss, i.e.
      ``l2 * W`` to their gradients (the data loss is what is reported).
    - ``early_stopping_patience``: stop after that many epochs without a lower val
      loss, then restore the best weights.
    - ``overfit_one_batch``: train on the first ``batch_size`` samples only, without
      shuffling: a correct model drives their loss towards 0 (the first debugging step).
    - ``checkpoint_dir``: save ``last.npz`` (everything, each epoch) and ``best.npz``
      (the weights with the lowest val loss); ``resume=True`` continues from ``last.npz``.
    - A NaN or infinite loss stops training with `TrainingDiverged`; the checkpoint of
      the last finished epoch is left as it was.
    """
    x_train, y_train = train_data
    if len(x_train) != len(y_train):
        raise ValueError(
            f"fit: x has {len(x_train)} samples but y has {len(y_train)}; they must match."
        )
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: need epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if overfit_one_batch:
        # BEGIN SOLUTION fit.overfit_one_batch: keep only the first batch, and no validation
        x_train, y_train = x_train[:batch_size], y_train[:batch_size]
        val_data = None
        # END SOLUTION
        # BEGIN PROMPT
        # The debugging run: from here on, train on the first batch_size samples of
        # x_train and y_train only (the same ones every epoch), and validate on nothing.
        # END PROMPT
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint_dir is not None:  # leftovers of a process killed while writing
        for name in (LAST_CHECKPOINT, BEST_CHECKPOINT):
            remove_stale_temporaries(checkpoint_dir / name)

    module_state.manual_seed(seed)  # dropout masks
    shuffle_rng = np.random.default_rng(seed)
    history = History()
    best_val_loss, epochs_without_improvement, start_epoch = math.inf, 0, 1
    if resume and checkpoint_dir is not None and (checkpoint_dir / LAST_CHECKPOINT).exists():
        saved = load_checkpoint(checkpoint_dir / LAST_CHECKPOINT, model, optimizer, scheduler)
        shuffle_rng = saved["shuffle_rng"]
        history = saved["history"]
        best_val_loss = saved["best_val_loss"]
        epochs_without_improvement = saved["epochs_without_improvement"]
        start_epoch = history.epoch[-1] + 1 if history.epoch else 1
        log(f"resumed from {checkpoint_dir / LAST_CHECKPOINT} after epoch {start_epoch - 1}")

    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    for epoch in range(start_epoch, epochs + 1):
        if history.stopped_early:
            break
        started = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        rng = None if overfit_one_batch else shuffle_rng
        bar = tqdm(
            iterate_minibatches(x_train, y_train, batch_size, rng),
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{epochs}",
            disable=None if progress else True,  # None: off when not a terminal
            leave=False,
            unit="batch",
        )
        for step, (x_batch, y_batch) in enumerate(bar, start=1):
            loss, logits = train_step(model, loss_fn, optimizer, x_batch, y_batch, l2)
            if not math.isfinite(loss):
                bar.close()
                kept = (
                    f"the last good checkpoint is {checkpoint_dir / LAST_CHECKPOINT}"
                    if checkpoint_dir is not None and (checkpoint_dir / LAST_CHECKPOINT).exists()
                    else "no checkpoint was written yet"
                )
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {epoch}, step {step} (lr={optimizer.lr:.3g}); "
                    f"training stopped and {kept}. Try a lower learning rate."
                )
            if scheduler is not None:
                scheduler.step()

            loss_sum += loss * len(x_batch)
            correct += int(np.sum(logits.argmax(axis=1) == y_batch))
            seen += len(x_batch)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        bar.close()

        history.epoch.append(epoch)
        history.train_loss.append(loss_sum / max(seen, 1))
        history.train_accuracy.append(correct / max(seen, 1))
        history.lr.append(float(optimizer.lr))
        improved = False
        if val_data is not None:
            result = evaluate(model, loss_fn, *val_data)
            history.val_loss.append(result.loss)
            history.val_accuracy.append(result.accuracy)
            improved = result.loss < best_val_loss
            if improved:
                best_val_loss, epochs_without_improvement = result.loss, 0
                history.best_epoch = epoch
            else:
                epochs_without_improvement += 1
            if (
                early_stopping_patience is not None
                and epochs_without_improvement >= early_stopping_patience
            ):
                history.stopped_early = True
        history.seconds.append(time.perf_counter() - started)
        log(_epoch_summary(history))

        if checkpoint_dir is not None:
            if improved:
                save_npz_atomic(checkpoint_dir / BEST_CHECKPOINT, _prefixed("model.", model))
            save_checkpoint(
                checkpoint_dir / LAST_CHECKPOINT,
                model,
                optimizer,
                scheduler,
                shuffle_rng,
                history,
                best_val_loss,
                epochs_without_improvement,
            )

    if history.stopped_early and checkpoint_dir is not None:
        best = load_npz(checkpoint_dir / BEST_CHECKPOINT)
        model.load_state_dict(_unprefixed("model.", best))
        log(f"early stopping: restored the weights of epoch {history.best_epoch}")
    return history


def _epoch_summary(history: History) -> str:
    text = (
        f"epoch {history.epoch[-1]:3d}  train loss {history.train_loss[-1]:.4f} "
        f"acc {history.train_accuracy[-1]:.4f}"
    )
    if history.val_loss:
        text += f"  val loss {history.val_loss[-1]:.4f} acc {history.val_accuracy[-1]:.4f}"
    return text + f"  lr {history.lr[-1]:.3g}  {history.seconds[-1]:.2f}s"


def _prefixed(prefix: str, obj) -> dict[str, np.ndarray]:
    return {prefix + key: np.asarray(value) for key, value in obj.state_dict().items()}


def _unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def save_checkpoint(
    path: Path,
    model: Module,
    optimizer,
    scheduler,
    shuffle_rng: np.random.Generator,
    history: History,
    best_val_loss: float,
    epochs_without_improvement: int,
) -> None:
    """Everything needed to resume, in one atomically written ``.npz``."""
    arrays = _prefixed("model.", model)
    arrays.update(_prefixed("optimizer.", optimizer))
    if scheduler is not None:
        arrays.update(_prefixed("scheduler.", scheduler))
    arrays["meta.shuffle_rng"] = _generator_state_to_array(shuffle_rng)
    arrays["meta.library_rng"] = _generator_state_to_array(module_state.default_rng())
    arrays["meta.history"] = np.array(json.dumps(history.to_dict()))
    arrays["meta.best_val_loss"] = np.array(best_val_loss)
    arrays["meta.epochs_without_improvement"] = np.array(epochs_without_improvement)
    save_npz_atomic(path, arrays)


def load_checkpoint(path: Path, model: Module, optimizer=None, scheduler=None) -> dict:
    """Restore a `save_checkpoint` file into ``model`` (and optimiser, schedule).

    Returns the training-loop state: shuffle_rng, history, best_val_loss,
    epochs_without_improvement. Raises DlccError when the file does not fit the model.
    """
    arrays = load_npz(path)
    try:
        model.load_state_dict(_unprefixed("model.", arrays))
    except ValueError as error:
        raise DlccError(f"checkpoint {path} does not fit this model: {error}") from None
    if optimizer is not None:
        optimizer.load_state_dict(_unprefixed("optimizer.", arrays))
    if scheduler is not None:
        scheduler.load_state_dict(_unprefixed("scheduler.", arrays))
    if "meta.library_rng" in arrays:
        module_state.default_rng().bit_generator.state = json.loads(str(arrays["meta.library_rng"]))
    if "meta.history" not in arrays:  # a weights-only file such as best.npz
        return {}
    return dict(
        shuffle_rng=_generator_from_array(arrays["meta.shuffle_rng"]),
        history=History.from_dict(json.loads(str(arrays["meta.history"]))),
        best_val_loss=float(arrays["meta.best_val_loss"]),
        epochs_without_improvement=int(arrays["meta.epochs_without_improvement"]),
    )
