"""``dlcc train RECIPE [--set key=value ...] --out DIR`` (``dlcc eval`` is in dlcc.runs).

Under torchrun the same command trains with DDP:
``torchrun --nproc_per_node 2 -m dlcc train RECIPE --out DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlcc.cli_options import (
    add_data_dir_argument,
    add_device_argument,
    add_progress_argument,
    add_track_arguments,
)


def register(commands) -> None:
    """Add ``dlcc train`` to the top-level sub-parsers."""
    train = commands.add_parser(
        "train",
        help="train a PyTorch model from a recipe (recipes/NAME.yaml or a path)",
        description="Train a recipe into a run directory. Running the same command again "
        "resumes an interrupted run from its last completed epoch.",
    )
    train.add_argument("recipe", help="a recipe name (see recipes/) or a YAML file")
    train.add_argument("--out", required=True, help="the run directory to create (or resume)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe setting, e.g. --set train.epochs=3 (repeatable)",
    )
    train.add_argument(
        "--params",
        metavar="FILE:KEY",
        help="apply the recipe settings in the mapping at KEY of a YAML file, "
        "{section: {key: value}}, before any --set; e.g. --params params.yaml:recipes.mnist_cnn "
        "(how the DVC pipeline's params.yaml reaches a training)",
    )
    add_device_argument(train)
    add_data_dir_argument(train)
    add_progress_argument(train)
    add_track_arguments(train, experiment="the recipe's name")
    debug = train.add_mutually_exclusive_group()
    debug.add_argument(
        "--overfit-batch",
        action="store_true",
        help="debug: train on one batch only; a correct set-up reaches 100%% on it",
    )
    debug.add_argument(
        "--lr-find",
        action="store_true",
        help="debug: sweep the learning rate and save lr_finder.png; trains nothing else",
    )
    train.set_defaults(handler=train_command)


def config_from_args(args: argparse.Namespace):
    from dlcc.training.config import apply_override, check_config, load_recipe, read_params

    params = getattr(args, "params", None)  # dlcc train --params FILE:KEY (not dlcc sweep)
    settings, source = read_params(params) if params else (None, "")
    config = load_recipe(args.recipe, args.overrides, settings=settings, settings_source=source)
    if args.device:
        apply_override(config, f"train.device={args.device}")
    if args.data_dir:
        config.data.data_dir = str(Path(args.data_dir).resolve())
    if args.no_progress or not sys.stderr.isatty():
        config.train.progress = False
    check_config(config)
    return config


def train_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.task.name == "gan":  # two networks, alternating steps: its own trainer
        return _train_gan(config, args)
    from dlcc.training import debug, loop

    if args.overfit_batch:
        result = debug.overfit_one_batch(config, _fresh_dir(args.out))
        verdict = "passed" if result["passed"] else "FAILED: look for a bug before training"
        print(
            f"overfit one batch of {result['batch_size']}: loss {result['first_loss']:.4f} -> "
            f"{result['final_loss']:.4f} in {result['steps']} steps, {result['metric']} "
            f"{result['final_metric']:.3f} ({verdict})"
        )
        return 0 if result["passed"] else 1
    if args.lr_find:
        result = debug.find_learning_rate(config, _fresh_dir(args.out))
        print(f"suggested peak lr {result['suggested_lr']:.3g}; plot: {args.out}/lr_finder.png")
        return 0
    loop.train(config, args.out, command=["dlcc", *sys.argv[1:]], logger=_tracker(args))
    return 0


def _tracker(args: argparse.Namespace):
    """The MLflow logger of this run (None with --no-track or DLCC_TRACK=0)."""
    from dlcc.tracking import tracker_for

    experiment = args.experiment or Path(args.recipe).stem
    return tracker_for(args.out, experiment=experiment, no_track=args.no_track)


def _train_gan(config, args: argparse.Namespace) -> int:
    from dlcc.training.config import ConfigError

    if args.overfit_batch or args.lr_find:
        raise ConfigError(
            "--overfit-batch and --lr-find are for the supervised tasks; a GAN recipe "
            "(task: gan) has no single loss to drive them: train it without them"
        )
    from dlcc.gan.trainer import train_gan

    train_gan(config, args.out, command=["dlcc", *sys.argv[1:]], logger=_tracker(args))
    return 0


def _fresh_dir(path: str) -> Path:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
