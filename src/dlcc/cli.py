"""The `dlcc` command. Thin: it parses arguments and delegates to library functions.

Every sub-command is a plain function that a test can call without a subprocess:
``main(["data", "list"])`` returns the exit status.

Each command group lives beside the code it drives, in a module with a
``register(commands)`` function. ``register`` adds its parsers to the ``commands``
sub-parser action and sets ``handler=`` on each leaf parser: a function
``handler(args: argparse.Namespace) -> int`` returning the exit status. Registration must
stay cheap: heavy imports (torch, matplotlib) belong inside the handlers. Options shared
by several commands come from `dlcc.cli_options`, never from this module. A command module
that fails to import is an error, not a silently missing command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dlcc import __version__
from dlcc.errors import DlccError

# The modules that register command groups, in the order `dlcc --help` lists them.
COMMAND_MODULES = [
    "dlcc.doctor.commands",
    "dlcc.data.commands",
    "dlcc.numpy_trainer.commands",
    "dlcc.training.commands",
    "dlcc.text.commands",
    "dlcc.runs.commands",
    "dlcc.tracking.commands",
    "dlcc.runs.reproduce",
    "dlcc.sweep.commands",
    "dlcc.segmentation.commands",
    "dlcc.ecg.commands",
    "dlcc.export.commands",
    "dlcc.deploy.commands",
    "dlcc.adversarial.commands",
    "dlcc.explain.commands",
    "dlcc.gan.commands",
    "dlcc.course.commands",
    "dlcc.pipeline.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlcc", description="Deep Learning Crash Course: tools, models and assignments."
    )
    parser.add_argument("--version", action="version", version=f"dlcc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
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
