"""`dlcc numpy train`: train the NumPy MLP or CNN into a run directory; `evaluate_numpy_run`.

The defaults for each (model, dataset) pair are the settings behind the README's
results table, so ``dlcc numpy train --model cnn --dataset mnist`` reproduces its row
with no other flag. A flag given on the command line overrides the default.

The run directory is the one contract of `dlcc.runs` (the PyTorch trainer writes the same):

    config.yaml        {kind: numpy, task: classification, data: ..., model: ..., optim: ...,
                        schedule: ..., train: ...}: every setting that changes the result
    history.json       a column per metric (epoch, train_loss, ..., val_accuracy, lr, seconds)
    metrics.json       dlcc.runs.METRIC_KEYS, test_accuracy, test_loss, test_epoch, model,
                       dataset, and train_/val_ loss and accuracy at test_epoch
    run.json           machine and versions (dlcc.runs.write_run_record)
    checkpoints/       last.npz (everything to resume exactly), best.npz (best val_accuracy)
    confusion_matrix.json, history.png, confusion_matrix.png, misclassified.png

"Best" is declared: the monitored history column (``val_accuracy`` by default, as in the
torch trainer) and its mode (``max``). The test split is evaluated with the best weights
when there is a validation split, with the last ones otherwise (metrics: test_checkpoint).

Running the same command again resumes an unfinished run (after a crash or a kill) from
checkpoints/last.npz and ends exactly as an uninterrupted run would; a finished run, or a
run with other settings, is refused so that no result is ever overwritten.

This module lives outside `dlcc.numpy_nn` because it uses the data registry, PyYAML and
matplotlib; the library itself needs NumPy alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dlcc.errors import DlccError

TASK = "classification"
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
    monitor="val_accuracy",
    mode=None,  # None: max for an accuracy, min for a loss
)
# The digits validation split has 180 images, so its accuracy moves in steps of 0.0056
# and ties are the rule (the first epoch to reach 179/180 would be "best"); its loss is
# the finer signal. The larger datasets keep the task's val_accuracy.
DIGITS = dict(monitor="val_loss")
DEFAULTS: dict[tuple[str, str], dict] = {
    ("mlp", "digits"): dict(epochs=30, batch_size=32, lr=3e-3, hidden=[128], **DIGITS),
    ("cnn", "digits"): dict(
        epochs=20, batch_size=32, lr=3e-3, channels=[16, 32], hidden=64, **DIGITS
    ),
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
MONITORS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
CHECKPOINTS = ("best", "last")
SPLITS = ("test", "val", "train")


def resolve_settings(model: str, dataset: str, overrides: dict) -> dict:
    """BASE, then the model's fallback, then the (model, dataset) row, then the flags.

    Returns the flat settings, normalised (a CNN has one hidden width, an MLP a list; the
    mode follows the monitor unless given), so that equal runs have equal settings.
    """
    settings = dict(BASE)
    settings.update(MODEL_FALLBACK[model])
    settings.update(DEFAULTS.get((model, dataset), {}))
    settings.update({key: value for key, value in overrides.items() if value is not None})
    settings.update(model=model, dataset=dataset)
    hidden = settings["hidden"]
    if model == "cnn":
        settings["hidden"] = int(hidden[0] if isinstance(hidden, list | tuple) else hidden)
        settings["channels"] = [int(width) for width in settings["channels"]]
    else:
        settings["hidden"] = [int(width) for width in np.atleast_1d(hidden)]
        settings["channels"] = None
    if settings["mode"] is None:
        settings["mode"] = "min" if settings["monitor"].endswith("loss") else "max"
    return settings


def config_sections(settings: dict, *, overfit_batch: bool, data_dir, progress: bool) -> dict:
    """The sections of config.yaml (kind and task are added by dlcc.runs)."""
    return {
        "data": {
            "dataset": settings["dataset"],
            "batch_size": settings["batch_size"],
            "data_dir": None if data_dir is None else str(data_dir),
        },
        "model": {
            "name": settings["model"],
            "hidden": settings["hidden"],
            "channels": settings["channels"],
            "dropout": settings["dropout"],
        },
        "optim": {"name": settings["optimizer"], "lr": settings["lr"], "l2": settings["l2"]},
        "schedule": {"name": settings["schedule"]},
        "train": {
            "epochs": settings["epochs"],
            "seed": settings["seed"],
            "patience": settings["patience"],
            "overfit_batch": bool(overfit_batch),
            "monitor": settings["monitor"],
            "mode": settings["mode"],
            "progress": bool(progress),
        },
    }


# Settings that may differ between a run and its resumption: they do not change the result.
RESUME_FREE = ["data.data_dir", "train.progress"]


# ---- the command line --------------------------------------------------------------------


def register(commands) -> None:
    """Add ``dlcc numpy train`` to the top-level sub-parsers."""
    from dlcc.cli_options import add_data_dir_argument

    numpy_cmd = commands.add_parser("numpy", help="the from-scratch NumPy library")
    numpy_commands = numpy_cmd.add_subparsers(dest="numpy_command", required=True)
    train = numpy_commands.add_parser(
        "train",
        help="train an MLP or CNN written in NumPy; defaults reproduce the README",
        description=(
            "Train the NumPy MLP or CNN into a run directory. Repeating the command on an "
            "unfinished run resumes it from checkpoints/last.npz; a finished run is refused."
        ),
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
    parser.add_argument(
        "--monitor",
        choices=MONITORS,
        help="the history column that decides the best epoch (default val_accuracy; "
        "val_loss on digits, whose 180 validation images make accuracy ties common)",
    )
    parser.add_argument(
        "--mode",
        choices=["max", "min"],
        help="whether higher or lower --monitor is better (default: max for an accuracy)",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--overfit-batch",
        action="store_true",
        help="debug: train on one batch only; a correct model reaches ~100%% train accuracy",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume is automatic; --resume only insists that there is an unfinished run "
        "to continue",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def train_command(args: argparse.Namespace) -> int:
    """Run `dlcc numpy train`; returns the exit status."""
    overrides = {key: getattr(args, key, None) for key in TUNABLE}
    settings = resolve_settings(args.model, args.dataset, overrides)
    out = Path(args.out or f"runs/numpy-{args.model}-{args.dataset}")
    train_numpy_run(
        settings,
        out,
        data_dir=args.data_dir,
        overfit_batch=args.overfit_batch,
        resume=args.resume,
        progress=not args.no_progress,
    )
    return 0


# ---- building the pieces from the settings -----------------------------------------------


def build_model(model_settings: dict, input_shape, num_classes: int):
    """The MLP or CNN of config.yaml's ``model`` section."""
    from dlcc.numpy_nn import models

    if model_settings["name"] == "mlp":
        return models.mlp(
            tuple(input_shape),
            num_classes,
            hidden=tuple(model_settings["hidden"]),
            dropout=model_settings["dropout"],
        )
    return models.cnn(
        tuple(input_shape),
        num_classes,
        channels=tuple(model_settings["channels"]),
        hidden=model_settings["hidden"],
        dropout=model_settings["dropout"],
    )


def build_optimizer(optim_settings: dict, parameters):
    from dlcc.numpy_nn import optim

    name, lr = optim_settings["name"], optim_settings["lr"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True)
    return {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[name](
        parameters, lr=lr
    )


def build_schedule(name: str, optimizer, *, lr: float, epochs: int, steps_per_epoch: int):
    from dlcc.numpy_nn import schedules

    total_steps = max(1, epochs * steps_per_epoch)
    if name == "onecycle":
        return schedules.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    if name == "cosine":
        warmup = min(steps_per_epoch, total_steps // 10)
        return schedules.CosineWithWarmup(optimizer, warmup_steps=warmup, total_steps=total_steps)
    if name == "step":
        return _PerEpochStep(
            schedules.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1),
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


def _check_settings(settings: dict) -> None:
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["lr"] <= 0:
        raise DlccError(
            f"--epochs and --batch-size must be >= 1 and --lr > 0, got epochs="
            f"{settings['epochs']}, batch size={settings['batch_size']}, lr={settings['lr']}"
        )
    if settings["patience"] is not None and settings["patience"] < 1:
        raise DlccError(f"--patience must be >= 1, got {settings['patience']}")
    if settings["monitor"] not in MONITORS:
        raise DlccError(f"--monitor must be one of {', '.join(MONITORS)}")
    if settings["mode"] not in ("max", "min"):
        raise DlccError(f"--mode must be max or min, got {settings['mode']!r}")


def _load_data(dataset: str, data_dir, seed: int):
    from dlcc.data import load_dataset

    return load_dataset(dataset, data_dir, seed=seed)


# ---- training into a run directory -------------------------------------------------------


def train_numpy_run(
    settings: dict,
    out: str | Path,
    *,
    data_dir=None,
    overfit_batch: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train the flat `settings` (see `resolve_settings`) into run directory `out`.

    A new directory starts a run; an unfinished one with the same settings resumes it;
    anything else is refused with a DlccError before a file is written. `resume=True`
    insists that there is an unfinished run. Returns the metrics written to metrics.json.
    """
    from dlcc.numpy_nn import manual_seed
    from dlcc.numpy_nn.losses import CrossEntropyLoss
    from dlcc.numpy_nn.train import checkpoint_epoch, fit, load_checkpoint
    from dlcc.runs import RunDir, prepare_run_dir, write_history

    _check_settings(settings)
    run = RunDir(Path(out), "numpy")
    print(f"dlcc numpy train: {settings['model']} on {settings['dataset']} -> {run.root}")
    data = _load_data(settings["dataset"], data_dir, settings["seed"])  # before any write
    if resume and not run.config.is_file():
        raise DlccError(
            f"--resume: {run.root} holds no unfinished run to continue (resume is automatic: "
            "repeat the original command; leave out --resume to start a new run)"
        )
    sections = config_sections(
        settings, overfit_batch=overfit_batch, data_dir=data_dir, progress=progress
    )
    resume_from = prepare_run_dir(run, TASK, sections, resume_free=RESUME_FREE)
    epochs_before = checkpoint_epoch(resume_from) if resume_from is not None else 0

    input_shape, num_classes = data.x_train.shape[1:], len(data.classes)
    manual_seed(settings["seed"])
    model = build_model(sections["model"], input_shape, num_classes)
    optimizer = build_optimizer(sections["optim"], model.parameters())
    batches_per_epoch = 1 if overfit_batch else -(-len(data.x_train) // settings["batch_size"])
    schedule = build_schedule(
        settings["schedule"],
        optimizer,
        lr=settings["lr"],
        epochs=settings["epochs"],
        steps_per_epoch=batches_per_epoch,
    )
    loss_fn = CrossEntropyLoss()
    print(
        f"  data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test, "
        f"input {tuple(input_shape)}, {num_classes} classes"
    )
    print(f"  model: {model.num_parameters():,} parameters")
    print(f"  best: {settings['monitor']} ({settings['mode']})")

    val_data = (data.x_val, data.y_val) if len(data.x_val) else None
    history = fit(
        model,
        loss_fn,
        optimizer,
        (data.x_train, data.y_train),
        val_data,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        scheduler=schedule,
        l2=settings["l2"],
        early_stopping_patience=settings["patience"],
        monitor=settings["monitor"],
        mode=settings["mode"],
        overfit_one_batch=overfit_batch,
        seed=settings["seed"],
        checkpoint_dir=run.checkpoints,
        resume=resume_from is not None,
        progress=progress,
    )
    write_history(run, history)

    # The test figures use the best weights when "best" was chosen on a validation split.
    validated = val_data is not None and not overfit_batch
    test_checkpoint = "best" if validated else "last"
    if validated:
        load_checkpoint(run.best, model)
    test_epoch = history.best_epoch if validated else history.epoch[-1]
    metrics = _write_outputs(run, data, model, loss_fn, history, settings, progress)
    at_test = history.rows()[history.epoch.index(test_epoch)]
    best_row = history.rows()[history.epoch.index(history.best_epoch)]
    # Per-epoch times (training + validation) summed, so a resumed run counts every epoch.
    metrics.update(
        {
            "kind": "numpy",
            "task": TASK,
            "monitor": settings["monitor"],
            "mode": settings["mode"],
            "best_epoch": history.best_epoch,
            "best_value": best_row[settings["monitor"]],
            "epochs": len(history),
            "stopped_early": history.stopped_early,
            "test_checkpoint": test_checkpoint,
            "test_epoch": test_epoch,
            "train_seconds": float(sum(history.seconds)),
            "train_seconds_this_session": float(sum(history.seconds[epochs_before:])),
            "parameters": model.num_parameters(),
            "model": settings["model"],
            "dataset": settings["dataset"],
            # The other figures of the epoch whose weights the test figures use.
            **{name: at_test[name] for name in MONITORS},
        }
    )
    _finish(run, metrics)

    print(
        f"test accuracy {metrics['test_accuracy']:.4f} with the {test_checkpoint} weights "
        f"(epoch {test_epoch}; trained {metrics['train_seconds']:.1f}s)"
    )
    if overfit_batch:
        final = history.train_accuracy[-1]
        verdict = "ok" if final == 1.0 else "NOT reached: look for a bug"
        print(f"overfit one batch: final train accuracy {final:.3f} ({verdict})")
    root = run.root
    print(f"wrote {root}/: metrics.json history.json config.yaml run.json confusion_matrix.json")
    print(f"      {root}/checkpoints/: last.npz best.npz")
    print(f"      {root}/: history.png confusion_matrix.png misclassified.png")
    return metrics


def _write_outputs(run, data, model, loss_fn, history, settings, progress) -> dict:
    """The test report: confusion matrix (JSON and PNG), curves, misclassified images."""
    from dlcc import plots
    from dlcc.atomic import write_text_atomic
    from dlcc.numpy_nn.train import evaluate
    from dlcc.runs import strict_json

    test = evaluate(model, loss_fn, data.x_test, data.y_test, progress=progress)
    num_classes = len(data.classes)
    matrix = plots.confusion_matrix(data.y_test, test.predictions, num_classes)
    write_text_atomic(
        run.root / "confusion_matrix.json",
        strict_json({"classes": list(data.classes), "matrix": matrix.tolist()}),
    )
    plots.plot_history(history.to_dict(), run.root / "history.png")
    plots.plot_confusion_matrix(matrix, data.classes, run.root / "confusion_matrix.png")
    images = data.x_test * data.std.reshape(1, -1, 1, 1) + data.mean.reshape(1, -1, 1, 1)
    plots.plot_misclassified(
        images, data.y_test, test.predictions, data.classes, run.root / "misclassified.png"
    )
    return {"test_accuracy": test.accuracy, "test_loss": test.loss}


def _finish(run, metrics: dict) -> None:
    """run.json, then metrics.json: written last, it marks the run finished."""
    from dlcc.runs import write_metrics, write_run_record

    write_run_record(run)
    write_metrics(run, metrics)


# ---- evaluating a saved run --------------------------------------------------------------


def evaluate_numpy_run(
    saved, *, checkpoint: str = "best", split: str = "test", data_dir=None
) -> dict:
    """Evaluate a NumPy run's checkpoint on a split; also writes eval_{split}_{checkpoint}.json.

    `saved` is `dlcc.runs.read_run(RUN_DIR)`. The model is rebuilt from config.yaml and
    the split loaded as in training (same dataset and seed). `data_dir` defaults to the
    one the run was trained with. Returns run_dir, kind, task, split, checkpoint, epoch
    (the epoch those weights come from), samples, loss and accuracy.
    """
    from dlcc.atomic import write_text_atomic
    from dlcc.numpy_nn.losses import CrossEntropyLoss
    from dlcc.numpy_nn.train import checkpoint_epoch, evaluate, load_checkpoint
    from dlcc.runs import strict_json

    run = saved.run
    if saved.kind != "numpy":
        raise DlccError(f"{run.root} is a {saved.kind} run; evaluate_numpy_run needs a NumPy run")
    if checkpoint not in CHECKPOINTS:
        raise DlccError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    if split not in SPLITS:
        raise DlccError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = run.checkpoint(checkpoint)
    if not path.is_file():
        raise DlccError(
            f"{run.root} has no checkpoints/{path.name}: the run has not finished an epoch "
            "(or the file was removed); train it with the same command to write it"
        )
    try:
        settings = saved.settings
        data_settings, model_settings = settings["data"], settings["model"]
        seed = settings["train"]["seed"]
    except (KeyError, TypeError):
        raise DlccError(
            f"{run.config} lacks the data/model/train sections of a `dlcc numpy train` run"
        ) from None
    if data_dir is None:
        data_dir = data_settings.get("data_dir")
    data = _load_data(data_settings["dataset"], data_dir, seed)
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if not len(x):
        raise DlccError(f"the {split} split of {data_settings['dataset']} is empty")
    try:
        model = build_model(model_settings, data.x_train.shape[1:], len(data.classes))
    except (KeyError, TypeError, ValueError) as error:
        raise DlccError(f"{run.config}: cannot build the model ({error})") from None
    load_checkpoint(path, model)  # DlccError when it does not fit
    epoch = checkpoint_epoch(path)
    result = evaluate(model, CrossEntropyLoss(), x, y)
    report = {
        "run_dir": str(run.root),
        "kind": "numpy",
        "task": saved.task,
        "split": split,
        "checkpoint": checkpoint,
        "epoch": epoch,
        "samples": len(x),
        "loss": float(result.loss),
        "accuracy": float(result.accuracy),
    }
    write_text_atomic(run.root / f"eval_{split}_{checkpoint}.json", strict_json(report))
    return report
