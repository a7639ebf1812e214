"""The `dlcc` command. Thin: it parses arguments and delegates to library functions.

Every sub-command is a plain function that a test can call without a subprocess:
``main(["data", "list"])`` returns the exit status.
"""

from __future__ import annotations

import argparse
import sys

from dlcc import __version__
from dlcc.errors import DlccError


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where datasets live (default: $DLCC_DATA_DIR, else ~/.cache/dlcc)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlcc", description="Deep Learning Crash Course: tools, models and assignments."
    )
    parser.add_argument("--version", action="version", version=f"dlcc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    # dlcc data ...
    data = commands.add_parser("data", help="list, fetch and verify datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    for name, text in [("list", "each dataset, whether it is present, and where")]:
        sub = data_commands.add_parser(name, help=text)
        _add_data_dir(sub)
    for name, text in [
        ("fetch", "download a dataset (checksummed, atomic)"),
        ("verify", "check a dataset's files against their sha256"),
    ]:
        sub = data_commands.add_parser(name, help=text)
        sub.add_argument("name", help="dataset name (see `dlcc data list`)")
        _add_data_dir(sub)

    # dlcc numpy ...
    numpy_cmd = commands.add_parser("numpy", help="the from-scratch NumPy library")
    numpy_commands = numpy_cmd.add_subparsers(dest="numpy_command", required=True)
    train = numpy_commands.add_parser(
        "train", help="train an MLP or CNN written in NumPy; defaults reproduce the README"
    )
    from dlcc.numpy_nn.commands import add_train_arguments

    add_train_arguments(train)
    _add_data_dir(train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "data":
            from dlcc.data import commands as data_commands

            if args.data_command == "list":
                return data_commands.list_command(args.data_dir)
            if args.data_command == "fetch":
                return data_commands.fetch_command(args.name, args.data_dir)
            if args.data_command == "verify":
                return data_commands.verify_command(args.name, args.data_dir)
        if args.command == "numpy" and args.numpy_command == "train":
            from dlcc.numpy_nn.commands import train_command

            return train_command(args)
    except DlccError as error:
        print(f"dlcc: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlcc: interrupted", file=sys.stderr)
        return 130
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())
