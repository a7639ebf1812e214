"""`dlcc numpy train`: train the NumPy MLP or CNN and write a run directory.

The defaults for each (model, dataset) pair are the settings behind the README's
results table, so ``dlcc numpy train --model cnn --dataset mnist`` reproduces its row
with no other flag. A flag given on the command line overrides the default.

The run directory holds: config.yaml (resolved settings), run.json (versions, time,
command), metrics.json, history.json, last.npz / best.npz checkpoints, and the plots
history.png, confusion_matrix.png, misclassified.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError

# Settings that produce the README figures. Keys missing here fall back to BASE.
BASE = dict(
    epochs=10,
    batch_size=64,
    optimizer="adam",
    lr=1e-3,
    schedule="onecycle",
    l2=0.0,
    dropout=0.0,
    hidden=None,
    channels=None,
    seed=0,
    patience=None,
)
DEFAULTS: dict[tuple[str, str], dict] = {
    ("mlp", "digits"): dict(epochs=30, batch_size=32, lr=3e-3, hidden=[128]),
    ("cnn", "digits"): dict(epochs=20, batch_size=32, lr=3e-3, channels=[16, 32], hidden=64),
    ("mlp", "mnist"): dict(epochs=20, batch_size=128, lr=2e-3, hidden=[512, 256], dropout=0.2),
    ("cnn", "mnist"): dict(epochs=5, batch_size=64, lr=3e-3, channels=[32, 64], hidden=128),
    ("cnn", "fashion-mnist"): dict(
        epochs=8, batch_size=64, lr=3e-3, channels=[32, 64], hidden=128, dropout=0.3
    ),
}
MODEL_FALLBACK = {
    "mlp": dict(hidden=[256, 128]),
    "cnn": dict(channels=[32, 64], hidden=128),
}
TUNABLE = list(BASE)  # the settings a command-line flag can override


def resolve_settings(model: str, dataset: str, overrides: dict) -> dict:
    """BASE, then the model's fallback, then the (model, dataset) row, then the flags."""
    settings = dict(BASE)
    settings.update(MODEL_FALLBACK[model])
    settings.update(DEFAULTS.get((model, dataset), {}))
    settings.update({key: value for key, value in overrides.items() if value is not None})
    settings.update(model=model, dataset=dataset)
    return settings


def register(commands) -> None:
    """Add ``dlcc numpy train`` to the top-level sub-parsers."""
    from dlcc.cli_options import add_data_dir_argument

    numpy_cmd = commands.add_parser("numpy", help="the from-scratch NumPy library")
    numpy_commands = numpy_cmd.add_subparsers(dest="numpy_command", required=True)
    train = numpy_commands.add_parser(
        "train", help="train an MLP or CNN written in NumPy; defaults reproduce the README"
    )
    add_train_arguments(train)
    add_data_dir_argument(train)
    train.set_defaults(handler=train_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["mlp", "cnn"], required=True)
    parser.add_argument(
        "--dataset", default="digits", help="digits (default, embedded), mnist, ..."
    )
    parser.add_argument(
        "--out", default=None, help="run directory (default runs/numpy-MODEL-DATASET)"
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--schedule", choices=["onecycle", "cosine", "step", "none"])
    parser.add_argument("--l2", type=float, help="L2 regularisation strength (weights only)")
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden widths (MLP) or one (CNN)")
    parser.add_argument("--channels", type=int, nargs="+", help="conv channels per stage (CNN)")
    parser.add_argument("--patience", type=int, help="early stopping patience in epochs")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--overfit-batch",
        action="store_true",
        help="debug: train on one batch only; a correct model reaches ~100%% train accuracy",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_model(settings: dict, input_shape, num_classes: int):
    from dlcc.numpy_nn import models

    if settings["model"] == "mlp":
        return models.mlp(
            input_shape, num_classes, hidden=tuple(settings["hidden"]), dropout=settings["dropout"]
        )
    hidden = settings["hidden"]
    hidden = hidden[0] if isinstance(hidden, list) else hidden
    return models.cnn(
        input_shape,
        num_classes,
        channels=tuple(settings["channels"]),
        hidden=hidden,
        dropout=settings["dropout"],
    )


def build_optimizer(settings: dict, parameters):
    from dlcc.numpy_nn import optim

    name, lr = settings["optimizer"], settings["lr"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True)
    return {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[name](
        parameters, lr=lr
    )


def build_schedule(settings: dict, optimizer, steps_per_epoch: int):
    from dlcc.numpy_nn import schedules

    total_steps = max(1, settings["epochs"] * steps_per_epoch)
    name = settings["schedule"]
    if name == "onecycle":
        return schedules.OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=total_steps)
    if name == "cosine":
        warmup = min(steps_per_epoch, total_steps // 10)
        return schedules.CosineWithWarmup(optimizer, warmup_steps=warmup, total_steps=total_steps)
    if name == "step":
        return _PerEpochStep(
            schedules.StepLR(optimizer, step_size=max(1, settings["epochs"] // 3), gamma=0.1),
            steps_per_epoch,
        )
    return None


class _PerEpochStep:
    """Adapts an epoch-based schedule to the loop's once-per-batch ``step()``."""

    def __init__(self, schedule, steps_per_epoch: int):
        self.schedule, self.steps_per_epoch, self.batches = schedule, steps_per_epoch, 0

    def step(self) -> None:
        self.batches += 1
        if self.batches % self.steps_per_epoch == 0:
            self.schedule.step()

    def state_dict(self):
        return {**self.schedule.state_dict(), "batches": np.array(self.batches)}

    def load_state_dict(self, state):
        self.batches = int(state["batches"])
        self.schedule.load_state_dict({k: v for k, v in state.items() if k != "batches"})


def train_command(args: argparse.Namespace) -> int:
    """Run `dlcc numpy train`; returns the exit status."""
    from dlcc import plots
    from dlcc.data import load_dataset
    from dlcc.numpy_nn import manual_seed
    from dlcc.numpy_nn.losses import CrossEntropyLoss
    from dlcc.numpy_nn.train import evaluate, fit

    overrides = {key: getattr(args, key, None) for key in TUNABLE}
    settings = resolve_settings(args.model, args.dataset, overrides)
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["lr"] <= 0:
        raise DlccError(
            f"--epochs and --batch-size must be >= 1 and --lr > 0, got epochs="
            f"{settings['epochs']}, batch size={settings['batch_size']}, lr={settings['lr']}"
        )
    out = Path(args.out or f"runs/numpy-{args.model}-{args.dataset}")
    print(f"dlcc numpy train: {args.model} on {args.dataset} -> {out}")
    data = load_dataset(args.dataset, args.data_dir, seed=settings["seed"])  # before any write
    out.mkdir(parents=True, exist_ok=True)
    input_shape, num_classes = data.x_train.shape[1:], len(data.classes)
    manual_seed(settings["seed"])
    model = build_model(settings, input_shape, num_classes)
    optimizer = build_optimizer(settings, model.parameters())
    batches_per_epoch = -(-len(data.x_train) // settings["batch_size"])
    if args.overfit_batch:
        batches_per_epoch = 1
    schedule = build_schedule(settings, optimizer, batches_per_epoch)
    loss_fn = CrossEntropyLoss()
    print(
        f"  data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test, "
        f"input {tuple(input_shape)}, {num_classes} classes"
    )
    print(f"  model: {model.num_parameters():,} parameters")

    _write_yaml(out / "config.yaml", settings | {"overfit_batch": args.overfit_batch})
    _write_json(out / "run.json", _run_info())
    started = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        optimizer,
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        scheduler=schedule,
        l2=settings["l2"],
        early_stopping_patience=settings["patience"],
        overfit_one_batch=args.overfit_batch,
        seed=settings["seed"],
        checkpoint_dir=out,
        resume=args.resume,
        progress=not args.no_progress,
    )
    # Sum of per-epoch times (training + validation), so a resumed run counts every epoch.
    train_seconds = float(sum(history.seconds))
    wall_seconds = time.perf_counter() - started
    history.save(out / "history.json")

    test = evaluate(model, loss_fn, data.x_test, data.y_test, progress=not args.no_progress)
    matrix = plots.confusion_matrix(data.y_test, test.predictions, num_classes)
    metrics = {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "val_accuracy": history.val_accuracy[-1] if history.val_accuracy else None,
        "train_accuracy": history.train_accuracy[-1] if history.train_accuracy else None,
        "train_seconds": train_seconds,
        "wall_seconds_this_invocation": wall_seconds,
        "epochs": len(history.epoch),
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "parameters": model.num_parameters(),
        "model": args.model,
        "dataset": args.dataset,
    }
    _write_json(out / "metrics.json", metrics)
    _write_json(out / "confusion_matrix.json", matrix.tolist())
    plots.plot_history(history.to_dict(), out / "history.png")
    plots.plot_confusion_matrix(matrix, data.classes, out / "confusion_matrix.png")
    images = data.x_test * data.std.reshape(1, -1, 1, 1) + data.mean.reshape(1, -1, 1, 1)
    plots.plot_misclassified(
        images, data.y_test, test.predictions, data.classes, out / "misclassified.png"
    )

    print(f"test accuracy {test.accuracy:.4f}  (trained {train_seconds:.1f}s)")
    if args.overfit_batch:
        verdict = "ok" if history.train_accuracy[-1] == 1.0 else "NOT reached: look for a bug"
        print(
            f"overfit one batch: final train accuracy {history.train_accuracy[-1]:.3f} ({verdict})"
        )
    print(f"wrote {out}/: metrics.json history.json config.yaml run.json last.npz best.npz")
    print(f"      {out}/: history.png confusion_matrix.png misclassified.png")
    return 0


def _run_info() -> dict:
    from threadpoolctl import threadpool_info

    import dlcc

    return {
        "dlcc_version": dlcc.__version__,
        "command": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ],
    }


def _write_json(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _write_yaml(path: Path, data: dict) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=True))
