"""The `dlcc` command. Thin: it parses arguments and delegates to library functions.

Every sub-command is a plain function that a test can call without a subprocess:
``main(["data", "list"])`` returns the exit status.

Each command group lives beside the code it drives, in a module with a
``register(commands)`` function. ``register`` adds its parsers to the ``commands``
sub-parser action and sets ``handler=`` on each leaf parser: a function that takes the
parsed ``argparse.Namespace`` and returns the exit status. Registration must stay cheap:
heavy imports (torch, matplotlib) belong inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dlcc import __version__
from dlcc.errors import DlccError

# The modules that register command groups, in the order `dlcc --help` lists them.
COMMAND_MODULES = [
    "dlcc.doctor",
    "dlcc.data.commands",
    "dlcc.numpy_trainer",
    "dlcc.training.commands",
    "dlcc.course.commands",
]


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--data-dir`` option every data-reading command shares."""
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
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise  # a real import error inside the module
            continue  # that command group is not part of this checkout yet
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error("incomplete command: see `dlcc --help`")
    try:
        return int(handler(args) or 0)
    except DlccError as error:
        print(f"dlcc: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlcc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
