"""``dlcc sweep RECIPE --space SPACE.yaml --trials N [--jobs J] [--resume]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlcc.cli_options import (
    add_data_dir_argument,
    add_device_argument,
    add_track_arguments,
)


def register(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="search a recipe's hyperparameters with Optuna (each trial a dlcc train run)",
        description="Run an Optuna study over a recipe: each trial trains the recipe with "
        "values drawn from the search space, median pruning stops poor trials early, and "
        "the best trial is written as a recipe (best.yaml). The study lives in optuna.db "
        "beside the sweep directory, so --resume continues it after a crash.",
    )
    sweep.add_argument("recipe", help="a recipe name (see recipes/) or a YAML file")
    sweep.add_argument(
        "--space",
        required=True,
        help="the search space, a YAML file (e.g. recipes/spaces/cifar10_mlp.yaml)",
    )
    sweep.add_argument(
        "--trials",
        type=int,
        required=True,
        help="the number of trials the study ends with, in total over all sessions "
        "(completed, pruned or failed; trials cut off by a crash do not count)",
    )
    sweep.add_argument(
        "--jobs", type=int, default=1, help="trials trained in parallel (worker processes)"
    )
    sweep.add_argument(
        "--out", default=None, help="the sweep directory (default: runs/sweeps/<recipe name>)"
    )
    sweep.add_argument(
        "--name", default=None, help="the study's name (default: the sweep directory's name)"
    )
    sweep.add_argument(
        "--resume", action="store_true", help="continue the existing study of this name"
    )
    sweep.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    sweep.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    sweep.add_argument(
        "--metric",
        default=None,
        help="the validation column to optimise (default: the recipe's task.monitor, "
        "else its task's own, e.g. val_accuracy)",
    )
    sweep.add_argument(
        "--direction",
        choices=("maximize", "minimize"),
        default=None,
        help="default: the recipe's task.mode for its monitor, else min for *loss, max otherwise",
    )
    prune = sweep.add_argument_group("pruning (Optuna's median pruner)")
    prune.add_argument("--no-prune", action="store_true", help="train every trial to its end")
    prune.add_argument(
        "--startup-trials",
        type=int,
        default=5,
        help="trials that are never pruned, to set the median (default 5)",
    )
    prune.add_argument(
        "--warmup-epochs",
        type=int,
        default=0,
        help="epochs of each trial that are never pruned (default 0)",
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe setting for every trial, e.g. --set train.epochs=3",
    )
    add_device_argument(sweep)
    add_data_dir_argument(sweep)
    add_track_arguments(sweep, experiment="the recipe's name")
    sweep.set_defaults(handler=sweep_command, no_progress=True)


def sweep_command(args: argparse.Namespace) -> int:
    from dlcc.sweep.study import open_study

    spec = spec_from_args(args)
    study = open_study(spec, resume=args.resume)
    run_sweep(spec, study)
    return 0


def spec_from_args(args: argparse.Namespace):
    """The sweep's `SweepSpec`: the recipe resolved as `dlcc train` resolves it, the
    objective, the checked space, the folders and the MLflow store."""
    from dlcc.sweep.space import load_space
    from dlcc.sweep.study import SweepError, SweepSpec
    from dlcc.tracking import store, tracking_enabled
    from dlcc.training.commands import config_from_args

    if args.trials < 1:
        raise SweepError(f"--trials: expected an integer >= 1, got {args.trials}")
    if args.jobs < 1:
        raise SweepError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    for flag in ("startup_trials", "warmup_epochs"):
        value = getattr(args, flag)
        if value < 0:
            raise SweepError(f"--{flag.replace('_', '-')}: expected >= 0, got {value}")
    config = config_from_args(args)
    if config.task.name == "gan":
        raise SweepError(
            "dlcc sweep drives the supervised loop (it prunes on a validation metric); a GAN "
            "recipe (task: gan) has its own trainer: sweep it by hand"
        )
    metric, direction = resolve_objective(config, args.metric, args.direction)
    settings = config.to_dict()
    params = load_space(args.space, settings)
    out = Path(args.out or Path("runs") / "sweeps" / Path(args.recipe).stem)
    track = tracking_enabled(args.no_track)
    return SweepSpec(
        recipe=args.recipe,
        space_file=str(args.space),
        out=str(out),
        name=args.name or out.resolve().name,
        trials=args.trials,
        settings=settings,
        params=params,
        metric=metric,
        direction=direction,
        jobs=args.jobs,
        sampler=args.sampler,
        seed=args.seed,
        prune=not args.no_prune,
        startup_trials=args.startup_trials,
        warmup_epochs=args.warmup_epochs,
        experiment=args.experiment or Path(args.recipe).stem,
        track=track,
        mlflow_uri=store.resolve_uri(out) if track else None,
        command=["dlcc", *sys.argv[1:]],
    )


def run_sweep(spec, study) -> dict:
    """Run the trials still to run, then write the outputs and finish the parent run
    (also when a trial's error stops the session). Returns the summary (sweep.json)."""
    from dlcc.sweep.report import finish_parent_run, write_outputs
    from dlcc.sweep.study import counted, open_parent_run, run_session, storage_url

    done = sum(counted(trial) for trial in study.trials)
    print(
        f"sweep {spec.name}: {len(spec.params)} parameter(s), {spec.metric} "
        f"({spec.direction}), {done} of {spec.trials} trials done; study in "
        f"{storage_url(spec.sweep_dir).removeprefix('sqlite:///')}"
    )
    spec.parent_run_id = open_parent_run(spec, study)
    status = "FAILED"
    try:
        if done < spec.trials:
            run_session(spec, study)
        else:
            print(f"the study already has {done} trials (--trials {spec.trials}): none to run")
        status = "FINISHED"
    finally:
        summary = write_outputs(spec, study)
        finish_parent_run(spec, summary, status)
    best = summary["best"]
    states = ", ".join(f"{count} {state.lower()}" for state, count in summary["states"].items())
    print(f"sweep {spec.name}: {states}")
    if best is None:
        print("no trial completed: no best.yaml")
    else:
        shown = ", ".join(f"{key}={format_value(value)}" for key, value in best["params"].items())
        print(f"best: trial {best['number']}, {spec.metric} {best['value']:.4f} ({shown})")
        print(f"best recipe: {best['recipe']}")
    for plot, note in summary["plots"].items():
        print(f"{plot}: {note if note.startswith('not drawn') else spec.sweep_dir / note}")
    return summary


def format_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def resolve_objective(config, metric: str | None, direction: str | None) -> tuple[str, str]:
    """(metric, direction): the recipe's monitored validation metric and its mode, or the
    flags'. The flags are written into the recipe (task.monitor/task.mode), so each trial's
    best checkpoint, early stopping and best_value follow the sweep's objective."""
    from dlcc.sweep.study import SweepError
    from dlcc.training.tasks import load_task_data, monitor_of

    modes = {"maximize": "max", "minimize": "min"}
    if metric is not None:
        config.task.monitor = metric
        config.task.mode = modes[direction] if direction else None
    elif direction is not None:
        config.task.mode = modes[direction]
    task, _ = load_task_data(config)
    monitor, mode = monitor_of(config, task)
    if not monitor.startswith("val_"):
        raise SweepError(
            f"the sweep's metric is {monitor!r}: trials are judged and pruned on a validation "
            f"figure; pass --metric val_... (e.g. val_loss) or set the recipe's task.monitor"
        )
    if metric is not None and direction is None and config.task.mode is None:
        config.task.mode = mode
    return monitor, {"max": "maximize", "min": "minimize"}[mode]
