"""``dlcc numpy train``: flags over the README defaults, into a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlcc.numpy_trainer.run import train_numpy_run
from dlcc.numpy_trainer.settings import MONITORS, TUNABLE, resolve_settings

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
