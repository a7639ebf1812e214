"""The training loop: `fit` and `evaluate`, readable from top to bottom.

One epoch is: shuffle, then for each mini-batch
    `train_step` (forward -> loss -> backward -> L2 term -> optimizer step) -> schedule step,
then evaluate on the validation split, ask the `BestTracker` whether this is the best
epoch so far (and whether to stop early), and save the checkpoints.

Everything a run needs to continue exactly where it stopped (weights, optimiser and
schedule state, both random generators, the history, the tracker's "best" and early
stopping state) goes into one ``.npz`` file, written atomically, so
``fit(..., resume=True)`` after a crash ends with the same weights, the same best epoch
and the same stopping epoch as a run that never stopped.

Dependencies: NumPy only. tqdm draws progress bars when it is installed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcc.atomic import atomic_write, remove_stale_temporaries
from dlcc.errors import DlccError, TrainingDiverged
from dlcc.numpy_nn import module as module_state
from dlcc.numpy_nn.module import Module
from dlcc.runs.history import BestTracker, History

LAST_CHECKPOINT = "last.npz"
BEST_CHECKPOINT = "best.npz"
# The columns of the History that `fit` returns: one row per completed epoch. Validation
# values are None when there is no validation split.
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]
MONITORABLE = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")

__all__ = [
    "BEST_CHECKPOINT",
    "HISTORY_COLUMNS",
    "LAST_CHECKPOINT",
    "EvalResult",
    "History",
    "TrainingDiverged",
    "add_l2_penalty",
    "evaluate",
    "fit",
    "load_checkpoint",
    "train_step",
]


class _NoBar:
    """Stands in for a tqdm bar when there is none: iterates, and ignores the rest."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(iterable, *, total: int, desc: str, enabled: bool):
    """A tqdm bar over `iterable` when `enabled` and tqdm is installed; else a plain loop.

    tqdm is imported here, not at the top: the library must work with NumPy alone.
    """
    if not enabled:
        return _NoBar(iterable)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar(iterable)
    # disable=None: off when the output is not a terminal.
    return tqdm(iterable, total=total, desc=desc, disable=None, leave=False, unit="batch")


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
    batches = progress_bar(
        iterate_minibatches(x, y, batch_size, rng=None),
        total=math.ceil(len(x) / batch_size),
        desc="evaluate",
        enabled=progress,
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
    monitor: str = "val_loss",
    mode: str = "min",
    overfit_one_batch: bool = False,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log=print,
) -> History:
    """Train ``model`` with mini-batch gradient descent and return its `History`.

    - ``train_data`` = (x (N, ...), y (N,)); ``val_data`` likewise, optional.
    - The History (`dlcc.runs.history.History`) has the columns `HISTORY_COLUMNS`, one
      row per epoch: ``history.train_loss[-1]``, ``history.val_accuracy``, ...; the
      validation values are None without ``val_data``.
    - ``scheduler`` is stepped once per batch (OneCycle, cosine with warm-up).
    - ``l2`` adds ``l2/2 * ||W||^2`` over weight matrices/kernels to the loss, i.e.
      ``l2 * W`` to their gradients (the data loss is what is reported).
    - "Best" is declared: the epoch with the lowest (``mode="min"``) or highest
      (``"max"``) value of the history column ``monitor``; ``history.best_epoch`` says
      which. Without the monitored value (no validation split) the latest epoch is best.
    - ``early_stopping_patience``: stop after that many epochs without a better
      monitored value, then restore the best weights.
    - ``overfit_one_batch``: train on the first ``batch_size`` samples only, without
      shuffling: a correct model drives their loss towards 0 (the first debugging step).
    - ``checkpoint_dir``: save ``last.npz`` (everything, each epoch) and ``best.npz``
      (the best epoch's weights); ``resume=True`` continues from ``last.npz``.
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
    if monitor not in MONITORABLE:
        raise ValueError(f"fit: monitor must be one of {', '.join(MONITORABLE)}, got {monitor!r}")
    tracker = BestTracker(monitor, mode, patience=early_stopping_patience)
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
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for name in (LAST_CHECKPOINT, BEST_CHECKPOINT):
            remove_stale_temporaries(checkpoint_dir / name)

    module_state.manual_seed(seed)  # dropout masks
    shuffle_rng = np.random.default_rng(seed)
    history = History(HISTORY_COLUMNS)
    best_weights = None  # in memory, for early stopping without a checkpoint_dir
    if resume and checkpoint_dir is not None and (checkpoint_dir / LAST_CHECKPOINT).exists():
        saved = load_checkpoint(checkpoint_dir / LAST_CHECKPOINT, model, optimizer, scheduler)
        shuffle_rng = saved["shuffle_rng"]
        history = saved["history"]
        try:
            tracker.load_state_dict(saved["best_tracker"])
        except ValueError as error:
            raise DlccError(
                f"cannot resume from {checkpoint_dir / LAST_CHECKPOINT}: {error}"
            ) from None
        log(f"resumed from {checkpoint_dir / LAST_CHECKPOINT} after epoch {len(history)}")
    start_epoch = history.epoch[-1] + 1 if len(history) else 1

    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    for epoch in range(start_epoch, epochs + 1):
        if tracker.should_stop:
            break
        started = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        rng = None if overfit_one_batch else shuffle_rng
        bar = progress_bar(
            iterate_minibatches(x_train, y_train, batch_size, rng),
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{epochs}",
            enabled=progress,
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

        lr = float(optimizer.lr)
        val = evaluate(model, loss_fn, *val_data) if val_data is not None else None
        row = dict(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_loss=val.loss if val is not None else None,
            val_accuracy=val.accuracy if val is not None else None,
            lr=lr,
        )
        improved = tracker.update(epoch, row[monitor])
        history.append(**row, seconds=time.perf_counter() - started)
        history.best_epoch, history.stopped_early = tracker.best_epoch, tracker.stopped_early
        log(_epoch_summary(history))

        if improved and checkpoint_dir is None and early_stopping_patience is not None:
            best_weights = {key: np.copy(value) for key, value in model.state_dict().items()}
        if checkpoint_dir is not None:
            if improved:
                best = _prefixed("model.", model)
                best["meta.epoch"] = np.array(epoch)
                save_npz_atomic(checkpoint_dir / BEST_CHECKPOINT, best)
            save_checkpoint(
                checkpoint_dir / LAST_CHECKPOINT,
                model,
                optimizer,
                scheduler,
                shuffle_rng,
                history,
                tracker,
            )

    if history.stopped_early and history.best_epoch != (
        history.epoch[-1] if len(history) else None
    ):
        if checkpoint_dir is not None:
            best_weights = _unprefixed("model.", load_npz(checkpoint_dir / BEST_CHECKPOINT))
        if best_weights is not None:
            model.load_state_dict(best_weights)
            log(f"early stopping: restored the weights of epoch {history.best_epoch}")
    return history


def _epoch_summary(history: History) -> str:
    row = history.last()
    text = (
        f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.4f}"
    )
    if row["val_loss"] is not None:
        text += f"  val loss {row['val_loss']:.4f}"
    if row["val_accuracy"] is not None:
        text += f" acc {row['val_accuracy']:.4f}"
    return text + f"  lr {row['lr']:.3g}  {row['seconds']:.2f}s"


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
    tracker: BestTracker,
) -> None:
    """Everything needed to resume, in one atomically written ``.npz`` (no pickle)."""
    arrays = _prefixed("model.", model)
    arrays.update(_prefixed("optimizer.", optimizer))
    if scheduler is not None:
        arrays.update(_prefixed("scheduler.", scheduler))
    arrays["meta.epoch"] = np.array(history.epoch[-1] if len(history) else 0)
    arrays["meta.shuffle_rng"] = _generator_state_to_array(shuffle_rng)
    arrays["meta.library_rng"] = _generator_state_to_array(module_state.default_rng())
    arrays["meta.history"] = np.array(json.dumps(history.to_dict()))
    arrays["meta.best_tracker"] = np.array(json.dumps(tracker.state_dict()))
    save_npz_atomic(path, arrays)


def load_checkpoint(path: Path, model: Module, optimizer=None, scheduler=None) -> dict:
    """Restore a `save_checkpoint` file into ``model`` (and optimiser, schedule).

    Returns the training-loop state: shuffle_rng, history (a `History`) and best_tracker
    (a `BestTracker.state_dict()`); ``{}`` for a weights-only file such as best.npz.
    Raises DlccError when the file is unreadable or does not fit the model.
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
    if "meta.best_tracker" not in arrays:
        raise DlccError(
            f"checkpoint {path} comes from an older dlcc (no best-epoch state); "
            "delete it to start afresh"
        )
    try:
        history = History.from_dict(json.loads(str(arrays["meta.history"])))
    except ValueError as error:
        raise DlccError(f"checkpoint {path}: {error}") from None
    return dict(
        shuffle_rng=_generator_from_array(arrays["meta.shuffle_rng"]),
        history=history,
        best_tracker=json.loads(str(arrays["meta.best_tracker"])),
    )


def checkpoint_epoch(path: Path) -> int:
    """The epoch whose weights a checkpoint (last.npz or best.npz) holds, read cheaply."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta.epoch" in data.files:
                return int(data["meta.epoch"])
            if "meta.history" in data.files:
                return len(History.from_dict(json.loads(str(data["meta.history"]))))
    except FileNotFoundError:
        raise DlccError(f"checkpoint {path} does not exist") from None
    except Exception as error:
        raise DlccError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {error}). "
            "It may be truncated or from another program."
        ) from None
    raise DlccError(f"checkpoint {path} does not say which epoch it holds")
