"""The training loop: plain PyTorch, readable from top to bottom, for any task.

`train(config, run_dir)` does, in order:
  1. set up: device, seeds, distributed process group, the run directory (or resume it);
  2. data, task, model, optimiser, schedule, mixed precision;
  3. per epoch: `train_one_epoch` then `evaluate` on the validation split, history,
     checkpoints (last.pt every epoch, best.pt when the task's monitored metric improves),
     early stopping;
  4. at the end: the best weights on the test split, the task's report, metrics.json.

The loop holds no task code: the task (`dlcc.training.tasks`) supplies the loss, the
metrics, the "best" rule and the report, so classification, segmentation, sequence
labelling and language modelling all train here. A dataset yields (inputs, targets),
whatever the targets are. Sequences (`dlcc.training.sequence`): a dataset that declares
itself sequential is read in order, and a stateful model carries its state from batch to
batch; the loop only resets that state at the start of each epoch and each evaluation.

Resume is exact: the data order and augmentation of an epoch are functions of (seed,
epoch), and a checkpoint holds the model, optimiser, schedule, scaler, RNG, history and
best-epoch states at an epoch boundary. A run killed at any point and started again with
the same command continues from its last completed epoch and ends with the same weights,
the same best checkpoint and the same metrics.json (deterministic mode, CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from dlcc.errors import TrainingDiverged
from dlcc.runs import (
    BestTracker,
    History,
    RunDir,
    prepare_run_dir,
    start_run_record,
    write_history,
)
from dlcc.training import distributed
from dlcc.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dlcc.training.config import Config, ConfigError
from dlcc.training.data import EvalSampler, make_loader, train_sampler
from dlcc.training.logging import FileLogger, MetricsLogger, MultiLogger
from dlcc.training.schedules import build_scheduler, epochs_within_budget, refit_scheduler
from dlcc.training.sequence import reset_carried_state
from dlcc.training.setup import (
    autocast_dtype,
    autocast_factory,
    build_network,
    build_optimizer,
    pick_device,
    seed_everything,
)
from dlcc.training.state import RunState, checkpoint_state, restore
from dlcc.training.tasks import Task, load_task_data, monitor_of

# Settings that may differ between a run and its resumption (they do not change the result).
RESUME_FREE = ("train.progress", "data.workers", "data.data_dir", "description")


@dataclass
class EpochContext:
    """What `train_one_epoch` needs besides the model and the data, fixed for a run."""

    task: Task
    optimizer: torch.optim.Optimizer
    scheduler: object | None  # a torch LR scheduler stepped once per optimiser step
    scaler: torch.amp.GradScaler
    device: torch.device
    autocast: Callable[[], object] = nullcontext  # a fresh autocast context per call
    augment: Callable | None = None  # (inputs, targets, generator) -> both, on the device
    accumulate: int = 1  # micro-batches per optimiser step
    grad_clip: float | None = None  # max global gradient norm
    channels_last: bool = False
    info: distributed.DistInfo = field(default_factory=distributed.DistInfo)
    progress: bool = False


# ---- one epoch ---------------------------------------------------------------------------


def train_one_epoch(model, loader, ctx: EpochContext, state: RunState, generator=None) -> dict:
    """One pass over the training data.

    Returns {"loss": mean training loss, <metric>: value for each of the task's metrics,
    "samples": samples seen (all ranks), "lr": the lr of the epoch's last step}.
    state.step counts optimiser steps over the whole run; it is updated in place.
    """
    # BEGIN SOLUTION train_one_epoch: put the model in training mode
    model.train()
    # END SOLUTION
    reset_carried_state(model)  # a recurrent state carried between batches starts afresh
    task, optimizer, device = ctx.task, ctx.optimizer, ctx.device
    metrics = {name: metric.to(device) for name, metric in task.metrics(ctx.info.enabled).items()}
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    seen = 0
    last_lr = optimizer.param_groups[0]["lr"]
    batches = tqdm(
        loader,
        desc=f"epoch {state.epoch + 1}",
        leave=False,
        disable=not ctx.progress,
        unit="batch",
        dynamic_ncols=True,
    )
    for batch_index, (inputs, targets) in enumerate(batches):
        inputs = inputs.to(device, non_blocking=True)  # (B, ...), e.g. (B, C, H, W)
        targets = targets.to(device, non_blocking=True)  # (B, ...): labels, masks, ...
        if ctx.augment is not None:  # dense tasks: the targets move with the inputs
            inputs, targets = ctx.augment(inputs, targets, generator)
        if ctx.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)

        last_micro_batch = (batch_index + 1) % ctx.accumulate == 0 or batch_index + 1 == len(loader)
        # Under DDP, gradients are all-reduced only on the micro-batch that ends a step.
        sync = nullcontext() if last_micro_batch or not ctx.info.enabled else model.no_sync()
        with sync:
            with ctx.autocast():
                # BEGIN SOLUTION train_one_epoch: forward pass and the task's loss
                outputs = model(inputs)  # (B, ...): logits for classification
                loss = task.loss(outputs, targets)
                # END SOLUTION
                # BEGIN PROMPT
                # Define `outputs` (the model's output for `inputs`) and `loss` (the task's
                # loss for this batch, from task.loss): the code below reads both.
                # END PROMPT
            check_finite(loss, state, optimizer)
            # BEGIN SOLUTION train_one_epoch: backward pass of the (scaled) loss
            ctx.scaler.scale(loss / ctx.accumulate).backward()
            # END SOLUTION
            # BEGIN PROMPT
            # Backpropagate loss / ctx.accumulate (one step sums `accumulate` micro-batches),
            # through ctx.scaler.scale(...): mixed precision's loss scaling, a no-op in fp32.
            # END PROMPT

        if last_micro_batch:
            if ctx.grad_clip is not None:
                ctx.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
            # BEGIN SOLUTION train_one_epoch: optimiser step, then clear the gradients
            ctx.scaler.step(optimizer)
            ctx.scaler.update()
            optimizer.zero_grad(set_to_none=True)
            # END SOLUTION
            # BEGIN PROMPT
            # Step through the scaler: ctx.scaler.step(optimizer) (it calls optimizer.step()),
            # then ctx.scaler.update(). Then clear the gradients for the next step.
            # END PROMPT
            last_lr = optimizer.param_groups[0]["lr"]  # the lr this step used
            if ctx.scheduler is not None:
                ctx.scheduler.step()
            state.step += 1

        batch_size = task.count(targets)  # what the loss is a mean over
        loss_sum += loss.detach().double() * batch_size
        detached = outputs.detach()
        for metric in metrics.values():
            metric.update(detached, targets)
        seen += batch_size
        if ctx.progress and batch_index % 20 == 0:
            batches.set_postfix(
                loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}"
            )
    totals = distributed.reduce_sum(
        torch.stack([loss_sum, torch.tensor(float(seen), device=device, dtype=torch.float64)]),
        ctx.info,
    )
    result = {"loss": (totals[0] / totals[1]).item()}
    result.update({name: metric.compute().item() for name, metric in metrics.items()})
    result.update(samples=int(totals[1].item()), lr=last_lr)
    return result


def check_finite(loss: torch.Tensor, state: RunState, optimizer) -> None:
    """The NaN/Inf detector: stop at once, naming the step, loss and last good checkpoint."""
    if torch.isfinite(loss.detach()).item():
        return
    last_good = state.last_checkpoint
    where = f"{last_good} (epoch {state.epoch})" if last_good else "none yet (first epoch)"
    raise TrainingDiverged(
        f"loss became {loss.item()} at epoch {state.epoch + 1}, step {state.step} "
        f"(lr {optimizer.param_groups[0]['lr']:.3g}); last good checkpoint: {where}. "
        "Lower optim.lr, set train.grad_clip, or check the data for NaNs"
    )


@torch.no_grad()
def evaluate(
    model,
    loader,
    task: Task,
    *,
    device,
    autocast=nullcontext,
    sync: bool = False,
    channels_last: bool = False,
    progress: bool = False,
    reporter=None,
) -> dict:
    """The task's mean loss and metrics over `loader`, synced over ranks when `sync`.

    Returns {"loss": ..., <metric>: ..., "samples": N}. With a `reporter`, every batch's
    (inputs, float32 outputs, targets) is also handed to it, on the CPU.
    """
    from torchmetrics import MeanMetric

    # BEGIN SOLUTION evaluate: put the model in evaluation mode
    model.eval()
    # END SOLUTION
    reset_carried_state(model)
    mean_loss = MeanMetric(sync_on_compute=sync).to(device)
    metrics = {name: metric.to(device) for name, metric in task.metrics(sync).items()}
    samples = 0
    for inputs, targets in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        # BEGIN SOLUTION evaluate: forward pass and metric updates
        with autocast():
            outputs = model(inputs).float()  # (B, ...)
        mean_loss.update(task.eval_loss(outputs, targets), weight=task.count(targets))
        for metric in metrics.values():
            metric.update(outputs, targets)
        # END SOLUTION
        # BEGIN PROMPT
        # Compute `outputs` inside `with autocast():`, as float32 (the code below reads them).
        # Update mean_loss with the batch's task.eval_loss, weighted by task.count(targets)
        # (the batch size for classification, the characters for a language model: so the
        # result is the mean over samples), and every metric in `metrics` with
        # (outputs, targets). No gradients: see the decorator on this function.
        # END PROMPT
        samples += task.count(targets)
        if reporter is not None:
            reporter.update(inputs.cpu(), outputs.cpu(), targets.cpu())
    if samples == 0 and not sync:
        return {"loss": math.nan, **dict.fromkeys(metrics, math.nan), "samples": 0}
    result = {"loss": mean_loss.compute().item()}
    result.update({name: metric.compute().item() for name, metric in metrics.items()})
    result["samples"] = samples
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

    Returns the final metrics (also in run_dir/metrics.json; keys in dlcc.runs.METRIC_KEYS,
    plus test_loss and test_<metric> for each of the task's metrics).
    """
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    use_cuda = config.train.device.startswith("cuda") or (
        config.train.device == "auto" and torch.cuda.is_available()
    )
    info = distributed.init_distributed(use_cuda)
    try:
        return _train(config, RunDir(run_dir, "torch"), info, logger, command)
    finally:
        distributed.shutdown_distributed()


def _train(config: Config, run: RunDir, info, extra_logger, command) -> dict:
    from dlcc.training.report import epoch_line, finish_run

    device = pick_device(config.train.device, info.local_rank)
    amp_dtype = autocast_dtype(config.train.precision, device)
    autocast = autocast_factory(amp_dtype, device)
    seed_everything(config.train.seed, config.train.deterministic)
    if config.data.batch_size % info.world_size:
        raise ConfigError(
            f"data.batch_size {config.data.batch_size} must be divisible by the number of "
            f"processes ({info.world_size}): it is the global batch size"
        )
    task, data = load_task_data(config)
    monitor, mode = monitor_of(config, task)
    # Only rank 0 touches the run directory; the others learn from it whether to resume.
    resume = None
    if info.is_main:
        resume = prepare_run_dir(run, task.name, config.to_dict(), resume_free=RESUME_FREE)
        start_run_record(run, command)  # run.json now, so a crashed run has its record
    resume = run.last if distributed.broadcast_flag(resume is not None, info) else None

    model = build_network(config, data, task).to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    per_rank_batch = config.data.batch_size // info.world_size
    sampler = train_sampler(
        data.train, config.train.seed, info.rank, info.world_size, repeat=config.data.repeat
    )
    pin = device.type == "cuda"
    train_loader = make_loader(
        data.train, per_rank_batch, sampler, workers=config.data.workers, pin_memory=pin
    )
    val_loader = make_loader(
        data.val,
        config.data.eval_batch_size,
        EvalSampler(len(data.val), info.rank, info.world_size),
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
    augment = task.augmentation(config.data.augment)

    state = RunState(
        history=History(task.history_columns()),
        tracker=BestTracker(monitor, mode, patience=config.train.patience),
    )
    if resume:
        # Rank 0 reads it and sends it: the other machines need no shared filesystem.
        checkpoint = load_checkpoint(resume) if info.is_main else None
        checkpoint = distributed.broadcast_object(checkpoint, info)
        restore(checkpoint, resume, model, optimizer, scheduler, scaler, state, config, device)
        if info.is_main:
            print(f"resuming {run.root} after epoch {state.epoch} of {config.train.epochs}")

    # The network as the loop runs it (DDP, compiled) vs `model`, whose weights we save.
    network = model
    if info.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        network = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.train.compile:
        network = torch.compile(network)
    adversary = task.adversary(model)  # adversarial training: attack each augmented batch
    if adversary is not None:
        augment = then(augment, adversary)
    ctx = EpochContext(
        task=task,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        device=device,
        autocast=autocast,
        augment=augment,
        accumulate=config.train.accumulate,
        grad_clip=config.train.grad_clip,
        channels_last=config.train.channels_last,
        info=info,
        progress=config.train.progress and info.is_main,
    )

    logger = None
    if info.is_main:
        # The rows an uninterrupted run would have logged so far, so metrics.csv is the same.
        logged = [{"step": row["epoch"], **numbers(row)} for row in state.history.rows()]
        logger = FileLogger(run.root, resume_rows=logged)
        if hasattr(extra_logger, "bind_model"):  # the tracker's device tag, model artifact
            extra_logger.bind_model(model, data, device)
        logger = MultiLogger(logger, extra_logger) if extra_logger else logger
        logger.log_params(config.to_dict())
    planned = config.train.epochs  # train.fit_budget: the epochs that fit in the budget
    if config.train.fit_budget:
        planned = epochs_within_budget(
            state.history["seconds"], config.train.time_budget, config.train.epochs
        )
    started = time.perf_counter()
    try:
        while state.epoch < planned and not state.tracker.should_stop:
            if budget_spent(state.history, config.train.time_budget, info):
                break
            epoch = state.epoch
            sampler.set_epoch(epoch)
            generator = torch.Generator(device=device).manual_seed(
                config.train.seed * 7919 + epoch * 101 + info.rank
            )
            epoch_start = time.perf_counter()
            train_metrics = train_one_epoch(network, train_loader, ctx, state, generator)
            seconds = time.perf_counter() - epoch_start
            val_metrics = {}
            if len(data.val):
                val_metrics = evaluate(
                    network,
                    val_loader,
                    task,
                    device=device,
                    autocast=autocast,
                    sync=info.enabled,
                    channels_last=config.train.channels_last,
                )
            state.epoch = epoch + 1
            names = ("loss", *task.metric_names)
            state.history.append(
                epoch=epoch + 1,
                **{f"train_{name}": train_metrics[name] for name in names},
                **{f"val_{name}": val_metrics.get(name) for name in names},
                lr=train_metrics["lr"],
                seconds=seconds,
                samples_per_second=train_metrics["samples"] / seconds,
            )
            if config.train.fit_budget:
                planned, scheduler = fit_budget(
                    planned, optimizer, scheduler, state, config, steps_per_epoch, info
                )
                ctx.scheduler = scheduler
            improved = state.tracker.update(epoch + 1, state.history[monitor][-1])
            state.history.best_epoch = state.tracker.best_epoch
            state.history.stopped_early = state.tracker.stopped_early
            if info.is_main:
                checkpoint = checkpoint_state(
                    model, optimizer, scheduler, scaler, state, config, device, data
                )
                last = save_checkpoint(run.last, checkpoint)
                if improved:
                    save_checkpoint(run.best, checkpoint)
                state.last_checkpoint = str(last)
                write_history(run, state.history)
                logger.log_metrics(numbers(state.history.last()), step=epoch + 1)
                print(epoch_line(state.history, task, config.train.epochs), flush=True)
            distributed.barrier(info)
        session_seconds = time.perf_counter() - started
        if not info.is_main:
            return {}
        return finish_run(
            model,
            data,
            task,
            config,
            run,
            state,
            device,
            autocast,
            logger,
            command,
            session_seconds,
        )
    finally:
        if logger is not None:
            logger.close()


def fit_budget(planned, optimizer, scheduler, state, config, steps_per_epoch, info):
    """(epochs, scheduler): the lr schedule laid out again over the epochs that now fit in
    train.time_budget, when they are not the `planned` ones (train.fit_budget)."""
    fits = epochs_within_budget(
        state.history["seconds"], config.train.time_budget, config.train.epochs
    )
    fits = distributed.broadcast_object(fits, info)  # rank 0's clock decides for all ranks
    if fits == planned:
        return planned, scheduler
    if info.is_main:
        print(
            f"time budget of {config.train.time_budget:g}s: {fits} epochs fit at "
            f"{state.history['seconds'][-1]:.0f}s an epoch (planned {planned}); "
            "the lr schedule now spans them"
        )
    scheduler = refit_scheduler(
        optimizer,
        config.schedule,
        config.optim.lr,
        fits * steps_per_epoch,
        steps_per_epoch,
        state.step,
    )
    return fits, scheduler


def then(first: Callable | None, second: Callable) -> Callable:
    """Two batch steps ``(inputs, targets, generator) -> (inputs, targets)``, one after the
    other (`first` may be None)."""
    if first is None:
        return second

    def both(inputs, targets, generator=None):
        return second(*first(inputs, targets, generator), generator)

    return both


def budget_spent(history: History, budget: float | None, info) -> bool:
    """True when another epoch, at the last one's pace, would take the training seconds of
    all sessions past train.time_budget."""
    if budget is None:
        return False
    seconds = history["seconds"]
    projected = sum(seconds) + (seconds[-1] if seconds else 0.0)
    # rank 0's clock decides for every rank, so that all stop after the same epoch
    if not distributed.broadcast_flag(projected > budget, info):
        return False
    if info.is_main:
        print(f"time budget of {budget:g}s spent after epoch {len(history)}: stopping")
    return True


def numbers(row: dict) -> dict[str, float]:
    """The entries a metrics logger takes: numbers, not None (a missing value) or text."""
    return {
        key: value
        for key, value in row.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


__all__ = [
    "CheckpointError",
    "EpochContext",
    "TrainingDiverged",
    "evaluate",
    "train",
    "train_one_epoch",
]
