"""The end of a run: the test split with the best weights, the task's report, metrics.json.

metrics.json is written last: its presence marks the run as finished.
"""

from __future__ import annotations

from dlcc.runs import History, RunDir, write_metrics, write_run_record
from dlcc.training.checkpoint import load_checkpoint, load_model_weights
from dlcc.training.data import DataBundle, EvalSampler, make_loader
from dlcc.training.tasks import Task


def evaluate_split(
    model, data: DataBundle, split: str, task: Task, config, device, autocast, reporter=None
) -> dict:
    """One process, the whole split (`evaluate` with the task's metrics)."""
    from dlcc.training.loop import evaluate

    dataset = getattr(data, split)
    loader = make_loader(dataset, config.data.eval_batch_size, EvalSampler(len(dataset)))
    return evaluate(
        model,
        loader,
        task,
        device=device,
        autocast=autocast,
        channels_last=config.train.channels_last,
        progress=config.train.progress,
        reporter=reporter,
    )


def finish_run(
    model,
    data,
    task,
    config,
    run: RunDir,
    state,
    device,
    autocast,
    logger,
    command,
    session_seconds: float,
) -> dict:
    """Test the best weights (the last without a validation split), report, write metrics.

    An empty test split (a dataset whose test images are unlabelled) is not evaluated: the
    test_* entries of metrics.json are null and test_samples is 0; the task's report is
    then of the validation split, and `report_split` in metrics.json says which it was.
    """
    from dlcc import plots

    test_checkpoint = "last"
    if run.best.is_file() and len(data.val):
        load_model_weights(model, load_checkpoint(run.best), run.best, config.model.name)
        test_checkpoint = "best"
    # The task's report (plots, per-image figures) is of the test split; a dataset without
    # one (isbi2012_em: its test images are unlabelled) reports on the validation split.
    report_split = "test" if len(data.test) else "val" if len(data.val) else None
    test = {"loss": None, **dict.fromkeys(task.metric_names), "samples": 0}
    extra = {}
    if report_split is not None:
        reporter = task.reporter(data)
        result = evaluate_split(model, data, report_split, task, config, device, autocast, reporter)
        if hasattr(reporter, "bind_model"):  # a report made from the model itself (samples)
            reporter.bind_model(model)
        extra = {f"{report_split}_{key}": value for key, value in reporter.write(run.root).items()}
        if report_split == "test":
            test = result
    history, tracker = state.history, state.tracker
    if len(history):
        plots.plot_history(history.to_dict(), run.root / "history.png")
    metrics = {
        **run_summary(task.name, tracker, history, test_checkpoint, session_seconds, model),
        **{f"test_{name}": test[name] for name in ("loss", *task.metric_names)},
        "test_samples": test["samples"],
        "report_split": report_split,
        **extra,
        "model": config.model.name,
        "dataset": config.data.dataset,
    }
    write_run_record(run, command)
    from dlcc.training.loop import numbers

    test_figures = {key: value for key, value in metrics.items() if key.startswith("test_")}
    logger.log_metrics(numbers(test_figures), len(history))
    for name in ("history.png", *task.plots):
        if (run.root / name).is_file():
            logger.log_artifact(run.root / name)
    write_metrics(run, metrics)  # last: marks the run finished
    if test["samples"]:
        summary = ", ".join(f"test {name} {test[name]:.4f}" for name in task.metric_names)
    else:
        summary = "no test split, so no test metrics (null in metrics.json)"
    print(f"{summary} (best epoch {tracker.best_epoch}); run directory {run.root}")
    return metrics


def epoch_line(history: History, task: Task, epochs: int) -> str:
    """One line per epoch: losses, the task's metrics, lr and speed."""
    row = history.last()

    def split_text(split: str) -> str:
        if row.get(f"{split}_loss") is None:
            return ""
        parts = [f"loss {row[f'{split}_loss']:.4f}"]
        parts += [f"{name} {row[f'{split}_{name}']:.4f}" for name in task.metric_names]
        return f"{split} {' '.join(parts)}  "

    return (
        f"epoch {row['epoch']:>3}/{epochs}  {split_text('train')}{split_text('val')}"
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s ({row['samples_per_second']:.0f}/s)"
    )


__all__ = ["epoch_line", "evaluate_split", "finish_run"]


def run_summary(task_name, tracker, history, test_checkpoint, session_seconds, model) -> dict:
    """The first `dlcc.runs.METRIC_KEYS` of a torch run's metrics.json, from its tracker and
    history: the part every torch trainer (the loop's, the GAN's) writes the same way."""
    from dlcc.models import count_parameters

    return {
        "kind": "torch",
        "task": task_name,
        "monitor": tracker.monitor,
        "mode": tracker.mode,
        "best_epoch": tracker.best_epoch,
        "best_value": tracker.best_value,
        "epochs": len(history),
        "stopped_early": tracker.stopped_early,
        "test_checkpoint": test_checkpoint,
        "train_seconds": round(sum(history["seconds"]), 2),
        "train_seconds_this_session": round(session_seconds, 2),
        "parameters": count_parameters(model),
    }
