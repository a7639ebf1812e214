"""The ``dlcc doctor`` command: parses its options and prints `run_doctor`'s report."""

from __future__ import annotations

import json
import sys

from dlcc.doctor import run_doctor
from dlcc.doctor.report import format_table
from dlcc.doctor.smoke import device_name
from dlcc.errors import DlccError


def register(commands) -> None:
    """Add ``dlcc doctor`` to the top-level sub-parsers."""
    import argparse

    from dlcc.cli_options import add_data_dir_argument

    def device_argument(text: str) -> str:
        try:
            return device_name(text)
        except DlccError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parser = commands.add_parser(
        "doctor",
        help="check Python, packages, data, PyTorch and GPUs; smoke-test and time each device",
        description=(
            "Check that this machine can run the course, and say how to fix what cannot. "
            "Exit status 1 when something the course needs is missing or broken, 0 otherwise "
            "(no GPU is only a warning)."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON on stdout instead of the table (redirect to keep it)",
    )
    parser.add_argument(
        "--no-smoke",
        dest="smoke",
        action="store_false",
        help="skip the smoke tests and GEMM timings; only report what is installed",
    )
    parser.add_argument(
        "--device",
        dest="devices",
        action="extend",
        nargs="+",
        type=device_argument,
        metavar="DEVICE",
        help="test only these devices: cpu, cuda (every GPU), cuda:N, mps (default: all found)",
    )
    add_data_dir_argument(parser)
    parser.set_defaults(handler=doctor_command)


def _stderr_progress(label: str) -> None:
    sys.stderr.write(f"\r\033[Kdlcc doctor: checking {label}...")
    sys.stderr.flush()


def doctor_command(args) -> int:
    """Run the checks, print the table (or JSON), return 0 when the course can run here."""
    interactive = sys.stderr.isatty()
    report = run_doctor(
        smoke=args.smoke,
        devices=args.devices,
        data_dir=args.data_dir,
        progress=_stderr_progress if interactive else None,
    )
    if interactive:
        sys.stderr.write("\r\033[K")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_table(report))
    return report.exit_status()
