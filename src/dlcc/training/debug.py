"""Debug tools: overfit one batch, and the learning-rate finder.

- Overfit one batch: a model, loss and optimiser that are wired correctly drive the
  training loss of a single fixed batch towards zero (a classifier's accuracy to 100%,
  a segmenter's Dice towards 1). If they cannot, no amount of data will help: look for
  the bug first. The task supplies the loss and metrics, as in the training loop.
- Learning-rate finder (Smith, 2017, "Cyclical learning rates"): raise the learning rate
  exponentially over a few hundred steps and watch the loss; a good peak rate is somewhat
  below where the loss falls fastest, well below where it blows up.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from dlcc.atomic import write_text_atomic
from dlcc.plots import save_figure
from dlcc.training.config import Config
from dlcc.training.data import ShardedShuffleSampler, make_loader
from dlcc.training.sequence import reset_carried_state
from dlcc.training.setup import build_network, build_optimizer, pick_device, seed_everything
from dlcc.training.tasks import load_task_data

# Overfitting one batch "passes" when the task's first metric reaches this on the batch.
OVERFIT_PASS = {"accuracy": 1.0, "dice": 0.95, "f1": 0.95}


def _setup(config: Config):
    device = pick_device(config.train.device)
    seed_everything(config.train.seed, config.train.deterministic)
    task, data = load_task_data(config)
    model = build_network(config, data, task).to(device)
    return device, data, task, model


def overfit_one_batch(config: Config, run_dir: str | Path | None = None) -> dict:
    """Train on the first training batch only, `config.train.overfit_steps` times.

    Returns {"steps", "batch_size", "first_loss", "final_loss", "metric", "final_metric",
    "passed"} and writes it to run_dir/overfit.json when run_dir is given. `metric` is the
    task's first metric (accuracy for a classifier); `passed` means it reached
    OVERFIT_PASS on the batch (100% accuracy, Dice 0.95), or the task's own `overfit_pass`.
    """
    device, data, task, model = _setup(config)
    sampler = ShardedShuffleSampler(len(data.train), config.train.seed)
    inputs, targets = next(iter(make_loader(data.train, config.data.batch_size, sampler)))
    inputs, targets = inputs.to(device), targets.to(device)  # (B, ...), (B, ...)
    optimizer = build_optimizer(model, config)
    model.train()
    losses = []
    for _ in range(config.train.overfit_steps):
        reset_carried_state(model)  # the same batch each step: start it from the same state
        loss = task.loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()  # the metric with the model as it will be used
    name = task.metric_names[0]
    metric = task.metrics(sync=False)[name].to(device)
    with torch.no_grad():
        reset_carried_state(model)
        outputs = model(inputs)
        metric.update(outputs, targets)
        final_loss = task.eval_loss(outputs, targets).item()
    final_metric = metric.compute().item()
    target = getattr(task, "overfit_pass", None) or OVERFIT_PASS.get(name, 1.0)
    result = {
        "steps": config.train.overfit_steps,
        "batch_size": len(targets),
        "first_loss": losses[0],
        "final_loss": final_loss,
        "metric": name,
        "final_metric": final_metric,
        "passed": final_metric >= target,
    }
    if run_dir is not None:
        write_text_atomic(Path(run_dir) / "overfit.json", json.dumps(result, indent=2) + "\n")
    return result


def find_learning_rate(
    config: Config,
    run_dir: str | Path,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
) -> dict:
    """Sweep the lr from start_lr to end_lr exponentially, one batch per step.

    Stops early once the smoothed loss exceeds 4x its minimum. Writes lr_finder.json and
    lr_finder.png to run_dir. The suggestion is the lr of steepest descent of the smoothed
    loss, capped at a tenth of the lr with the lowest loss (a common, conservative rule).
    """
    run_dir = Path(run_dir)
    device, data, task, model = _setup(config)
    optimizer = build_optimizer(model, config)
    sampler = ShardedShuffleSampler(len(data.train), config.train.seed)
    loader = make_loader(data.train, config.data.batch_size, sampler)
    factor = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    lrs, losses, smoothed, average = [], [], [], 0.0
    batches = iter(loader)
    model.train()
    for step in range(steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:
            sampler.set_epoch(sampler.epoch + 1)
            batches = iter(loader)
            inputs, targets = next(batches)
        lr = start_lr * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = task.loss(model(inputs.to(device)), targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        average = smoothing * average + (1 - smoothing) * value
        debiased = average / (1 - smoothing ** (step + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(debiased)
        if not math.isfinite(value) or debiased > 4 * min(smoothed):
            break
    suggestion = suggest_learning_rate(lrs, smoothed)
    result = {"lr": lrs, "loss": losses, "smoothed_loss": smoothed, "suggested_lr": suggestion}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "lr_finder.json", json.dumps(result, indent=2) + "\n")
    plot_lr_finder(lrs, smoothed, suggestion, run_dir / "lr_finder.png")
    return result


def suggest_learning_rate(lrs: list[float], smoothed: list[float]) -> float:
    """Steepest descent of loss vs log(lr), but no more than a tenth of the loss minimum's lr."""
    if len(lrs) < 3:
        return lrs[0]
    log_lrs = [math.log10(lr) for lr in lrs]
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / (log_lrs[i + 1] - log_lrs[i - 1])
        for i in range(1, len(lrs) - 1)
    ]
    steepest = lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]
    at_minimum = lrs[min(range(len(smoothed)), key=smoothed.__getitem__)]
    return min(steepest, at_minimum / 10)


def plot_lr_finder(lrs, smoothed, suggestion, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(lrs, smoothed)
    axis.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested {suggestion:.2e}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("smoothed training loss")
    axis.set_title("learning-rate finder")
    axis.grid(alpha=0.3)
    axis.legend()
    save_figure(figure, path)
