"""The training loop: plain PyTorch, readable from top to bottom.

`train(config, run_dir)` does, in order:
  1. set up: device, seeds, distributed process group, the run directory (or resume it);
  2. data, model, optimiser, schedule, mixed precision;
  3. per epoch: `train_one_epoch` then `evaluate` on the validation split, history,
     checkpoints (last.pt every epoch, best.pt when validation accuracy improves);
  4. at the end: the best weights on the test split, metrics.json, plots.

Resume is exact: the data order and augmentation of an epoch are functions of (seed,
epoch), and a checkpoint holds the model, optimiser, schedule, scaler and RNG states at
an epoch boundary. A run killed at any point and started again with the same command
continues from its last completed epoch and ends with the same weights (deterministic
mode, CPU).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dlcc import __version__
from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError
from dlcc.training import distributed
from dlcc.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from dlcc.training.config import Config, ConfigError, config_from_dict, dump_config
from dlcc.training.data import (
    DataBundle,
    EvalSampler,
    ShardedShuffleSampler,
    load_data,
    make_loader,
)
from dlcc.training.logging import FileLogger, MetricsLogger, MultiLogger
from dlcc.training.schedules import build_scheduler


class TrainingDiverged(DlccError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


# Settings that may differ between a run and its resumption (they do not change the result).
RESUME_FREE_KEYS = {("train", "progress"), ("data", "workers"), ("data", "data_dir")}


# ---- set-up ------------------------------------------------------------------------------


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; anything else is checked to exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(
            f"train.device: expected auto, cpu, cuda, cuda:N or mps, got {requested!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA GPU is visible: run `dlcc doctor`")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device is mps but Apple MPS is not available here")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32. `auto`: bf16 (or fp16) on CUDA, fp32 else."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("train.precision fp16 needs a GPU; on CPU use fp32 (or bf16)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy np.random calls in user code
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """Weight decay applies to weight matrices and kernels, not to biases or norm scales."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optim = config.optim
    if optim.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=optim.lr,
            momentum=optim.momentum,
            nesterov=optim.nesterov and optim.momentum > 0,
        )
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optim.name]
    return kind(groups, lr=optim.lr, betas=tuple(optim.betas))


def build_network(config: Config, data: DataBundle) -> nn.Module:
    from dlcc.models import build_model

    return build_model(config.model.name, data.in_shape, data.num_classes, **config.model.options)


# ---- the state of a run ------------------------------------------------------------------


@dataclass
class History:
    """One entry per completed epoch, in the order they ran."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    def append(self, **values) -> None:
        for key, value in values.items():
            getattr(self, key).append(value)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)


# ---- one epoch ---------------------------------------------------------------------------


def train_one_epoch(
    model,
    loader,
    optimizer,
    scheduler,
    scaler,
    *,
    device,
    augment,
    generator,
    autocast,
    config: Config,
    state: dict,
    info,
    progress: bool,
) -> dict:
    """One pass over the training data. Returns summed loss, correct count and image count.

    state["step"] counts optimiser steps over the whole run; it is updated in place.
    """
    # BEGIN SOLUTION train_one_epoch: put the model in training mode
    model.train()
    # END SOLUTION
    accumulate = config.train.accumulate
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    last_lr = optimizer.param_groups[0]["lr"]
    batches = tqdm(
        loader,
        desc=f"epoch {state['epoch'] + 1}",
        leave=False,
        disable=not progress,
        unit="batch",
        dynamic_ncols=True,
    )
    for batch_index, (images, labels) in enumerate(batches):
        images = images.to(device, non_blocking=True)  # (B, C, H, W)
        labels = labels.to(device, non_blocking=True)  # (B,)
        if augment is not None:
            images = augment(images, generator)
        if config.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)

        last_micro_batch = (batch_index + 1) % accumulate == 0 or batch_index + 1 == len(loader)
        # Under DDP, gradients are all-reduced only on the micro-batch that ends a step.
        sync = nullcontext() if last_micro_batch or not info.enabled else model.no_sync()
        with sync:
            with autocast():
                # BEGIN SOLUTION train_one_epoch: forward pass and cross-entropy loss
                logits = model(images)  # (B, num_classes)
                loss = F.cross_entropy(logits, labels, label_smoothing=config.train.label_smoothing)
                # END SOLUTION
                # BEGIN PROMPT
                # Define `logits` (B, num_classes) and `loss` (the batch's mean cross-entropy,
                # with config.train.label_smoothing): the code below reads both.
                # END PROMPT
            check_finite(loss, state, optimizer)
            # BEGIN SOLUTION train_one_epoch: backward pass of the (scaled) loss
            scaler.scale(loss / accumulate).backward()
            # END SOLUTION
            # BEGIN PROMPT
            # Backpropagate loss / accumulate (one step sums `accumulate` micro-batches), through
            # scaler.scale(...): mixed precision's loss scaling, a no-op in fp32.
            # END PROMPT

        if last_micro_batch:
            if config.train.grad_clip is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            # BEGIN SOLUTION train_one_epoch: optimiser step, then clear the gradients
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            # END SOLUTION
            # BEGIN PROMPT
            # Step through the scaler: scaler.step(optimizer) (it calls optimizer.step()), then
            # scaler.update(). Then clear the gradients for the next step's micro-batches.
            # END PROMPT
            last_lr = optimizer.param_groups[0]["lr"]  # the lr this step used
            if scheduler is not None:
                scheduler.step()
            state["step"] += 1

        loss_sum += loss.detach().float() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        if progress and batch_index % 20 == 0:
            batches.set_postfix(
                loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}"
            )
    totals = distributed.reduce_sum(
        torch.stack(
            [loss_sum.double(), correct.double(), torch.tensor(seen, device=device).double()]
        ),
        info,
    )
    return {
        "loss": (totals[0] / totals[2]).item(),
        "accuracy": (totals[1] / totals[2]).item(),
        "images": int(totals[2].item()),
        "lr": last_lr,
    }


def check_finite(loss: torch.Tensor, state: dict, optimizer) -> None:
    """The NaN/Inf detector: stop at once, naming the step, loss and last good checkpoint."""
    if torch.isfinite(loss.detach()).item():
        return
    last_good = state.get("last_checkpoint")
    where = f"{last_good} (epoch {state['epoch']})" if last_good else "none yet (first epoch)"
    raise TrainingDiverged(
        f"loss became {loss.item()} at epoch {state['epoch'] + 1}, step {state['step']} "
        f"(lr {optimizer.param_groups[0]['lr']:.3g}); last good checkpoint: {where}. "
        "Lower optim.lr, set train.grad_clip, or check the data for NaNs"
    )


@torch.no_grad()
def evaluate(
    model,
    loader,
    *,
    device,
    autocast,
    num_classes: int,
    sync: bool,
    channels_last: bool = False,
    progress: bool = False,
    keep_predictions: bool = False,
) -> dict:
    """Mean cross-entropy and accuracy (torchmetrics), synced over ranks when `sync`.

    With keep_predictions, also returns "predictions" and "labels" as int64 NumPy arrays.
    """
    from torchmetrics import MeanMetric
    from torchmetrics.classification import MulticlassAccuracy

    # BEGIN SOLUTION evaluate: put the model in evaluation mode
    model.eval()
    # END SOLUTION
    mean_loss = MeanMetric(sync_on_compute=sync).to(device)
    accuracy = MulticlassAccuracy(num_classes, average="micro", sync_on_compute=sync).to(device)
    predictions, targets, batches = [], [], 0
    for images, labels in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # BEGIN SOLUTION evaluate: forward pass and metric updates
        with autocast():
            logits = model(images).float()  # (B, num_classes)
        mean_loss.update(F.cross_entropy(logits, labels, reduction="none"))
        accuracy.update(logits, labels)
        # END SOLUTION
        # BEGIN PROMPT
        # Compute `logits` (B, num_classes) inside `with autocast():`, as float32 (the code
        # below reads them). Update mean_loss with each image's cross-entropy
        # (reduction="none") and accuracy with (logits, labels). No gradients: see the
        # decorator on this function.
        # END PROMPT
        batches += 1
        if keep_predictions:
            predictions.append(logits.argmax(dim=1).cpu())
            targets.append(labels.cpu())
    if batches == 0 and not sync:
        return {"loss": float("nan"), "accuracy": float("nan")}
    result = {"loss": mean_loss.compute().item(), "accuracy": accuracy.compute().item()}
    if keep_predictions:
        result["predictions"] = torch.cat(predictions).numpy()
        result["labels"] = torch.cat(targets).numpy()
    return result


# ---- the whole run -----------------------------------------------------------------------


def train(
    config: Config,
    run_dir: str | Path,
    *,
    logger: MetricsLogger | None = None,
    command: list[str] | None = None,
) -> dict:
    """Train `config` into `run_dir`; resumes when run_dir holds the same unfinished run.

    Returns the final metrics (also in run_dir/metrics.json): test_accuracy, test_loss,
    best_val_accuracy, best_epoch, epochs, train_seconds.
    """
    run_dir = Path(run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    use_cuda = config.train.device.startswith("cuda") or (
        config.train.device == "auto" and torch.cuda.is_available()
    )
    info = distributed.init_distributed(use_cuda)
    try:
        return _train(config, run_dir, info, logger, command)
    finally:
        distributed.shutdown_distributed()


def _train(config, run_dir, info, extra_logger, command) -> dict:
    device = pick_device(config.train.device, info.local_rank)
    amp_dtype = autocast_dtype(config.train.precision, device)
    seed_everything(config.train.seed, config.train.deterministic)
    if config.data.batch_size % info.world_size:
        raise ConfigError(
            f"data.batch_size {config.data.batch_size} must be divisible by the number of "
            f"processes ({info.world_size}): it is the global batch size"
        )
    resume = prepare_run_dir(run_dir, config) if info.is_main else None
    resume = distributed.broadcast_flag(resume is not None, info) and _resume_path(run_dir)

    data = load_data(
        config.data.dataset, config.data.data_dir, config.data.val_size, config.train.seed
    )
    model = build_network(config, data).to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)

    per_rank_batch = config.data.batch_size // info.world_size
    train_sampler = ShardedShuffleSampler(
        len(data.train), config.train.seed, info.rank, info.world_size
    )
    pin = device.type == "cuda"
    train_loader = make_loader(
        data.train, per_rank_batch, train_sampler, workers=config.data.workers, pin_memory=pin
    )
    val_loader = make_loader(
        data.val,
        config.data.eval_batch_size,
        EvalSampler(len(data.val), info.rank, info.world_size),
        workers=0,
        pin_memory=pin,
    )
    steps_per_epoch = math.ceil(len(train_loader) / config.train.accumulate)
    scheduler = build_scheduler(
        optimizer,
        config.schedule,
        config.optim.lr,
        config.train.epochs * steps_per_epoch,
        steps_per_epoch,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    augment = None
    if config.data.augment:
        from dlcc.training.transforms import build_transforms

        augment = build_transforms(config.data.augment)
    history = History()
    state = {"epoch": 0, "step": 0, "best_metric": -math.inf, "last_checkpoint": None}
    if resume:
        checkpoint = load_checkpoint(resume)
        load_model_weights(model, checkpoint, resume, config.model.name)
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        history = History.from_dict(checkpoint["history"])
        state.update(
            epoch=checkpoint["epoch"],
            step=checkpoint["step"],
            best_metric=checkpoint["best_metric"],
            last_checkpoint=str(resume),
        )
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if device.type == "cuda" and "cuda" in checkpoint["rng"]:
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
        if info.is_main:
            print(f"resuming {run_dir} after epoch {state['epoch']} of {config.train.epochs}")

    # The network as the loop runs it (DDP, compiled) vs `model`, whose weights we save.
    network = model
    if info.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        network = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.train.compile:
        network = torch.compile(network)

    def autocast():
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    logger = None
    if info.is_main:
        logger = FileLogger(run_dir, resume_rows=_metric_rows(history))
        logger = MultiLogger(logger, extra_logger) if extra_logger else logger
        logger.log_params(config.to_dict())
    progress = config.train.progress and info.is_main
    started = time.perf_counter()
    try:
        while state["epoch"] < config.train.epochs:
            epoch = state["epoch"]
            train_sampler.set_epoch(epoch)
            generator = torch.Generator(device=device).manual_seed(
                config.train.seed * 7919 + epoch * 101 + info.rank
            )
            epoch_start = time.perf_counter()
            train_metrics = train_one_epoch(
                network,
                train_loader,
                optimizer,
                scheduler,
                scaler,
                device=device,
                augment=augment,
                generator=generator,
                autocast=autocast,
                config=config,
                state=state,
                info=info,
                progress=progress,
            )
            seconds = time.perf_counter() - epoch_start
            val_metrics = {"loss": math.nan, "accuracy": math.nan}
            if len(data.val):
                val_metrics = evaluate(
                    network,
                    val_loader,
                    device=device,
                    autocast=autocast,
                    num_classes=data.num_classes,
                    sync=info.enabled,
                    channels_last=config.train.channels_last,
                )
            state["epoch"] = epoch + 1
            history.append(
                epoch=epoch + 1,
                train_loss=train_metrics["loss"],
                train_accuracy=train_metrics["accuracy"],
                val_loss=val_metrics["loss"],
                val_accuracy=val_metrics["accuracy"],
                lr=train_metrics["lr"],
                seconds=seconds,
                images_per_second=train_metrics["images"] / seconds,
            )
            # Without a validation split, "best" is simply the latest epoch.
            improved = len(data.val) == 0 or val_metrics["accuracy"] > state["best_metric"]
            if improved:
                state["best_metric"] = val_metrics["accuracy"] if len(data.val) else -math.inf
                history.best_epoch = epoch + 1
            if info.is_main:
                checkpoint = _checkpoint_state(
                    model, optimizer, scheduler, scaler, state, history, config, device
                )
                last = save_checkpoint(run_dir / "checkpoints" / "last.pt", checkpoint)
                if improved:
                    save_checkpoint(run_dir / "checkpoints" / "best.pt", checkpoint)
                state["last_checkpoint"] = str(last)
                write_text_atomic(run_dir / "history.json", history_json(history))
                logger.log_metrics(_metric_rows(history)[-1], step=epoch + 1)
                print(_epoch_line(history, config.train.epochs), flush=True)
            distributed.barrier(info)
        train_seconds = time.perf_counter() - started
        if not info.is_main:
            return {}
        metrics = finish_run(
            model, data, config, run_dir, history, device, autocast, logger, command, train_seconds
        )
        return metrics
    finally:
        if logger is not None:
            logger.close()


def history_json(history: History) -> str:
    """history.json's text: strict JSON, so a missing validation value is null, not NaN."""
    data = {
        key: [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
        if isinstance(values, list)
        else values
        for key, values in history.to_dict().items()
    }
    return json.dumps(data) + "\n"


def _epoch_line(history: History, epochs: int) -> str:
    validation = ""
    if math.isfinite(history.val_loss[-1]):
        validation = f"val loss {history.val_loss[-1]:.4f} acc {history.val_accuracy[-1]:.4f}  "
    return (
        f"epoch {history.epoch[-1]:>3}/{epochs}  train loss {history.train_loss[-1]:.4f} "
        f"acc {history.train_accuracy[-1]:.4f}  {validation}lr {history.lr[-1]:.2e}  "
        f"{history.seconds[-1]:.1f}s ({history.images_per_second[-1]:.0f} img/s)"
    )


def _metric_rows(history: History) -> list[dict]:
    keys = [
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "images_per_second",
    ]
    return [
        {"epoch": epoch, **{key: getattr(history, key)[index] for key in keys}}
        for index, epoch in enumerate(history.epoch)
    ]


def _checkpoint_state(model, optimizer, scheduler, scaler, state, history, config, device):
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {
        "model_name": config.model.name,
        "model_options": dict(config.model.options),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "epoch": state["epoch"],
        "step": state["step"],
        "best_metric": state["best_metric"],
        "history": history.to_dict(),
        "rng": rng,
        "config": config.to_dict(),
    }


# ---- the run directory -------------------------------------------------------------------


def _resume_path(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.pt"


def prepare_run_dir(run_dir: Path, config: Config) -> Path | None:
    """Create `run_dir`, or find the unfinished run of the same config to resume.

    Returns the checkpoint to resume from, or None for a fresh run. Refuses a run directory
    that holds a finished run or a different config, so no result is overwritten.
    """
    saved_config = run_dir / "config.yaml"
    if saved_config.is_file():
        import yaml

        previous = config_from_dict(yaml.safe_load(saved_config.read_text()), str(saved_config))
        differences = config_differences(previous, config)
        if differences:
            raise ConfigError(
                f"{run_dir} holds a run with a different config ({'; '.join(differences[:3])}); "
                "choose a new --out directory"
            )
        if (run_dir / "metrics.json").is_file():
            raise ConfigError(
                f"{run_dir} already holds a finished run (metrics.json); evaluate it with "
                f"`dlcc eval {run_dir}` or choose a new --out directory"
            )
        last = _resume_path(run_dir)
        return last if last.is_file() else None
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(
            f"{run_dir} exists and is not a dlcc run directory (no config.yaml); "
            "choose a new or empty --out directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", dump_config(config))
    return None


def config_differences(old: Config, new: Config) -> list[str]:
    """`section.key: old -> new` for every setting that changes the result."""
    old_dict, new_dict = old.to_dict(), new.to_dict()
    changes = []
    for section, values in new_dict.items():
        if not isinstance(values, dict):
            if old_dict.get(section) != values and section != "description":
                changes.append(f"{section}: {old_dict.get(section)!r} -> {values!r}")
            continue
        for key, value in values.items():
            if (section, key) in RESUME_FREE_KEYS:
                continue
            if old_dict[section].get(key) != value:
                changes.append(f"{section}.{key}: {old_dict[section].get(key)!r} -> {value!r}")
    return changes


def finish_run(
    model, data, config, run_dir, history, device, autocast, logger, command, train_seconds
) -> dict:
    """Test the best weights, then write metrics.json, run.json and the plots."""
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file() and len(data.val):
        load_model_weights(model, load_checkpoint(best), best, config.model.name)
    test = evaluate_split(model, data, "test", config, device, autocast)
    finite = [value for value in history.val_accuracy if math.isfinite(value)]
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "best_val_accuracy": max(finite, default=None),  # None without a validation split
        "best_epoch": history.best_epoch,
        "epochs": len(history.epoch),
        "train_seconds_this_session": round(train_seconds, 2),
        "train_seconds_total": round(sum(history.seconds), 2),
    }
    write_outputs(run_dir, data, history, test, metrics)
    write_text_atomic(run_dir / "run.json", json.dumps(run_info(command), indent=2) + "\n")
    logger.log_metrics(
        {"test_accuracy": test["accuracy"], "test_loss": test["loss"]}, step=len(history.epoch)
    )
    for name in ("history.png", "confusion_matrix.png", "misclassified.png"):
        logger.log_artifact(run_dir / name)
    print(
        f"test accuracy {test['accuracy']:.4f} (best epoch {history.best_epoch}); "
        f"run directory {run_dir}"
    )
    return metrics


def evaluate_split(model, data: DataBundle, split: str, config: Config, device, autocast) -> dict:
    """One process, the whole split, with predictions kept for the plots."""
    dataset = getattr(data, split)
    loader = make_loader(dataset, config.data.eval_batch_size, EvalSampler(len(dataset)))
    return evaluate(
        model,
        loader,
        device=device,
        autocast=autocast,
        num_classes=data.num_classes,
        sync=False,
        channels_last=config.train.channels_last,
        progress=config.train.progress,
        keep_predictions=True,
    )


def write_outputs(
    run_dir: Path, data: DataBundle, history: History, test: dict, metrics: dict
) -> None:
    from dlcc import plots

    matrix = plots.confusion_matrix(test["labels"], test["predictions"], data.num_classes)
    write_text_atomic(
        run_dir / "confusion_matrix.json",
        json.dumps({"classes": data.classes, "matrix": matrix.tolist()}) + "\n",
    )
    if history.epoch:
        curves = history.to_dict()
        for key in ("val_loss", "val_accuracy"):  # no validation split: no validation curve
            if not any(math.isfinite(value) for value in curves[key]):
                curves[key] = []
        plots.plot_history(curves, run_dir / "history.png")
    plots.plot_confusion_matrix(matrix, data.classes, run_dir / "confusion_matrix.png")
    images = data.test.images.numpy()
    plots.plot_misclassified(
        images, test["labels"], test["predictions"], data.classes, run_dir / "misclassified.png"
    )
    # metrics.json last: its presence marks the run as finished.
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def run_info(command: list[str] | None) -> dict:
    return {
        "command": command if command is not None else sys.argv,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dlcc": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }


__all__ = ["CheckpointError", "TrainingDiverged", "evaluate", "train", "train_one_epoch"]
