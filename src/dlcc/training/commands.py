"""``dlcc train RECIPE [--set key=value ...] --out DIR`` and ``dlcc eval RUN_DIR``.

Under torchrun the same command trains with DDP:
``torchrun --nproc_per_node 2 -m dlcc train RECIPE --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(commands) -> None:
    """Add ``dlcc train`` and ``dlcc eval`` to the top-level sub-parsers."""
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
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (= --set train.device=)")
    train.add_argument("--data-dir", help="where datasets live (= --set data.data_dir=)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
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

    evaluate = commands.add_parser("eval", help="evaluate a saved run on its test split")
    evaluate.add_argument("run_dir", help="a run directory written by `dlcc train`")
    evaluate.add_argument("--checkpoint", choices=["best", "last"], default="best")
    evaluate.add_argument("--split", choices=["test", "val", "train"], default="test")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--data-dir", help="where datasets live")
    evaluate.set_defaults(handler=eval_command)


def _config_from_args(args: argparse.Namespace):
    from dlcc.training.config import apply_override, check_config, load_recipe

    config = load_recipe(args.recipe, args.overrides)
    if args.device:
        apply_override(config, f"train.device={args.device}")
    if args.data_dir:
        config.data.data_dir = str(Path(args.data_dir).resolve())
    if args.no_progress or not sys.stderr.isatty():
        config.train.progress = False
    check_config(config)
    return config


def train_command(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    from dlcc.training import debug, loop

    if args.overfit_batch:
        result = debug.overfit_one_batch(config, _fresh_dir(args.out))
        verdict = "passed" if result["passed"] else "FAILED: look for a bug before training"
        print(
            f"overfit one batch of {result['batch_size']}: loss {result['first_loss']:.4f} -> "
            f"{result['final_loss']:.4f} in {result['steps']} steps, accuracy "
            f"{result['final_accuracy']:.3f} ({verdict})"
        )
        return 0 if result["passed"] else 1
    if args.lr_find:
        result = debug.find_learning_rate(config, _fresh_dir(args.out))
        print(f"suggested peak lr {result['suggested_lr']:.3g}; plot: {args.out}/lr_finder.png")
        return 0
    loop.train(config, args.out, command=["dlcc", *sys.argv[1:]])
    return 0


def _fresh_dir(path: str) -> Path:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def eval_command(args: argparse.Namespace) -> int:
    from dlcc.training.evaluation import evaluate_run

    result = evaluate_run(
        args.run_dir,
        checkpoint=args.checkpoint,
        split=args.split,
        device=args.device,
        data_dir=args.data_dir,
    )
    print(
        json.dumps(
            {key: result[key] for key in ("split", "checkpoint", "accuracy", "loss", "images")},
            indent=2,
        )
    )
    return 0
