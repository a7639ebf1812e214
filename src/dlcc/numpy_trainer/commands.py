"""``dlcc numpy train``: flags over the README defaults, into a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlcc.errors import DlccError
from dlcc.numpy_trainer.run import train_numpy_run
from dlcc.numpy_trainer.settings import MONITORS, TUNABLE, resolve_settings

# ---- the command line --------------------------------------------------------------------


def register(commands) -> None:
    """Add ``dlcc numpy train`` to the top-level sub-parsers."""
    from dlcc.cli_options import add_data_dir_argument, add_track_arguments

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
    add_track_arguments(train, experiment="numpy")
    train.set_defaults(handler=train_command)
    sample = numpy_commands.add_parser(
        "sample",
        help="sample text from a `dlcc numpy train --model char_lstm` run",
        description="Print --n characters drawn from a character model's checkpoint.",
    )
    sample.add_argument("run_dir", help="the --out directory of a char_lstm run")
    sample.add_argument("--n", type=int, default=300, help="characters to draw (default 300)")
    sample.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="below 1: more conservative, above 1: more random (default 0.8)",
    )
    sample.add_argument("--prime", default="\n", help="text to start from (default a newline)")
    sample.add_argument(
        "--top-k", type=int, default=None, help="draw only among the K most likely characters"
    )
    sample.add_argument("--seed", type=int, default=0, help="the same seed, the same text")
    sample.add_argument("--checkpoint", choices=["best", "last"], default="best")
    sample.set_defaults(handler=sample_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["mlp", "cnn", "char_lstm"], required=True)
    parser.add_argument(
        "--dataset",
        default=None,
        help="digits (default for mlp/cnn, embedded), mnist, ...; for char_lstm "
        "tinyshakespeare (default) or copy (generated, trains in seconds)",
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
    char = parser.add_argument_group("char_lstm (truncated BPTT over carried state)")
    char.add_argument("--seq-len", type=int, help="time steps per chunk (default 64)")
    char.add_argument("--embedding", type=int, help="embedding width (default 64)")
    char.add_argument("--layers", type=int, help="LSTM layers (default 1)")
    char.add_argument("--clip", type=float, help="global gradient-norm clip (default 5; 0: off)")
    char.add_argument(
        "--steps-per-epoch", type=int, help="steps between validations (default one pass)"
    )
    char.add_argument(
        "--time-budget",
        type=float,
        help="seconds of training + validation, then stop (tinyshakespeare default 900)",
    )


def train_command(args: argparse.Namespace) -> int:
    """Run `dlcc numpy train`; returns the exit status."""
    if args.model == "char_lstm":
        return _char_train_command(args)
    dataset = args.dataset or "digits"
    overrides = {key: getattr(args, key, None) for key in TUNABLE}
    settings = resolve_settings(args.model, dataset, overrides)
    out = Path(args.out or f"runs/numpy-{args.model}-{dataset}")
    train_numpy_run(
        settings,
        out,
        data_dir=args.data_dir,
        overfit_batch=args.overfit_batch,
        resume=args.resume,
        progress=not args.no_progress,
        command=["dlcc", *sys.argv[1:]],
    )
    _track(args, out)
    return 0


def _track(args: argparse.Namespace, out: Path) -> None:
    """Upload the finished run to MLflow (unless --no-track or DLCC_TRACK=0)."""
    from dlcc.tracking import track_finished_run

    experiment = getattr(args, "experiment", None) or "numpy"
    track_finished_run(out, experiment=experiment, no_track=getattr(args, "no_track", False))


def _char_train_command(args: argparse.Namespace) -> int:
    from dlcc.numpy_trainer.charlm import IMAGE_ONLY, resolve_char_settings, train_char_run
    from dlcc.numpy_trainer.charlm import TUNABLE as CHAR_TUNABLE

    if args.overfit_batch:
        raise DlccError("--overfit-batch is not a setting of --model char_lstm")
    if args.monitor not in (None, "val_loss") or args.mode not in (None, "min"):
        raise DlccError("--model char_lstm keeps the lowest val_loss (--monitor val_loss)")
    dataset = args.dataset or "tinyshakespeare"
    overrides = {key: getattr(args, key, None) for key in (*CHAR_TUNABLE, *IMAGE_ONLY)}
    settings = resolve_char_settings(dataset, overrides)
    out = Path(args.out or f"runs/numpy-char_lstm-{dataset}")
    train_char_run(
        settings,
        out,
        data_dir=args.data_dir,
        resume=args.resume,
        progress=not args.no_progress,
        command=["dlcc", *sys.argv[1:]],
    )
    _track(args, out)
    return 0


def sample_command(args: argparse.Namespace) -> int:
    """Run `dlcc numpy sample`: print the text."""
    from dlcc.numpy_trainer.charlm import sample_run

    print(
        sample_run(
            args.run_dir,
            n=args.n,
            temperature=args.temperature,
            prime=args.prime.replace("\\n", "\n"),
            seed=args.seed,
            checkpoint=args.checkpoint,
            top_k=args.top_k,
        )
    )
    return 0
