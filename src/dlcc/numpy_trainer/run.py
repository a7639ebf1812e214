"""Training the NumPy model into a run directory, and evaluating a saved NumPy run."""

from __future__ import annotations

from pathlib import Path

from dlcc.errors import DlccError
from dlcc.numpy_trainer.settings import (
    CHECKPOINTS,
    MONITORS,
    RESUME_FREE,
    SPLITS,
    TASK,
    _check_settings,
    _load_data,
    build_model,
    build_optimizer,
    build_schedule,
    config_sections,
)

# ---- training into a run directory -------------------------------------------------------


def train_numpy_run(
    settings: dict,
    out: str | Path,
    *,
    data_dir=None,
    overfit_batch: bool = False,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
) -> dict:
    """Train the flat `settings` (see `resolve_settings`) into run directory `out`.

    A new directory starts a run; an unfinished one with the same settings resumes it;
    anything else is refused with a DlccError before a file is written. `resume=True`
    insists that there is an unfinished run. `command` is what run.json records (default
    sys.argv). Returns the metrics written to metrics.json.
    """
    from dlcc.numpy_nn import manual_seed
    from dlcc.numpy_nn.losses import CrossEntropyLoss
    from dlcc.numpy_nn.train import checkpoint_epoch, fit, load_checkpoint
    from dlcc.runs import RunDir, prepare_run_dir, start_run_record, write_history

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
    start_run_record(run, command)  # run.json now, so a crashed run has its record
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
    _finish(run, metrics, command)

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


def _finish(run, metrics: dict, command: list[str] | None = None) -> None:
    """run.json completed, then metrics.json: written last, it marks the run finished."""
    from dlcc.runs import write_metrics, write_run_record

    write_run_record(run, command)
    write_metrics(run, metrics)


# ---- evaluating a saved run --------------------------------------------------------------


def evaluate_numpy_run(
    saved, *, checkpoint: str = "best", split: str = "test", data_dir=None, out=None
) -> dict:
    """Evaluate a NumPy run's checkpoint on a split; also writes eval_{split}_{checkpoint}.json
    in the run directory (or the file `out`).

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
    if saved.task == "language_model":
        from dlcc.numpy_trainer.charlm import evaluate_char_run

        return evaluate_char_run(
            saved, checkpoint=checkpoint, split=split, data_dir=data_dir, out=out
        )
    path = saved_checkpoint(run, checkpoint)
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
    path = Path(out) if out is not None else run.root / f"eval_{split}_{checkpoint}.json"
    write_text_atomic(path, strict_json(report))
    return report


def saved_checkpoint(run, checkpoint: str) -> Path:
    """The path of `run`'s "last" or "best" checkpoint, or a one-line error if it is absent."""
    path = run.checkpoint(checkpoint)
    if not path.is_file():
        raise DlccError(
            f"{run.root} has no checkpoints/{path.name}: the run has not finished an epoch "
            "(or the file was removed); train it with the same command to write it"
        )
    return path
