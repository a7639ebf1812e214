"""``dlcc data list | fetch NAME | verify NAME | check NAME``: print to stdout, return a status.

User errors raise `DataError` (the CLI prints its one-line message and exits with 2).
"""

from __future__ import annotations

import argparse

from dlcc.data.fetch import fetch_dataset
from dlcc.data.paths import data_dir_origin, resolve_data_dir
from dlcc.data.registry import dataset_names, get_spec
from dlcc.data.status import dataset_status, missing_dataset_error
from dlcc.data.verify import FAILING_STATUSES, MISSING, verify_dataset
from dlcc.errors import DataError


def register(commands) -> None:
    """Add ``dlcc data list|fetch|verify|check`` to the top-level sub-parsers."""
    from dlcc.cli_options import add_data_dir_argument

    data = commands.add_parser("data", help="list, fetch, verify and check datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    sub = data_commands.add_parser("list", help="each dataset, whether it is present, and where")
    add_data_dir_argument(sub)
    sub.set_defaults(handler=list_command)
    for name, text, handler in [
        ("fetch", "download a dataset (checksummed, atomic)", fetch_command),
        ("verify", "check a dataset's files against their sha256", verify_command),
        (
            "check",
            "data tests: schema, label range, no example shared between splits (by hash)",
            check_command,
        ),
    ]:
        sub = data_commands.add_parser(name, help=text)
        sub.add_argument("name", help="dataset name (see `dlcc data list`)")
        add_data_dir_argument(sub)
        sub.set_defaults(handler=handler)


def list_command(args: argparse.Namespace) -> int:
    """Print each registered dataset, whether it is present, and where. Returns 0."""
    data_dir = args.data_dir
    data_root = resolve_data_dir(data_dir)
    print(f"data directory: {data_root} (from {data_dir_origin(data_dir)})")
    rows = []
    for name in dataset_names():
        status = dataset_status(name, data_dir)
        state = "present" if status.present else "missing"
        where = str(status.location) if status.location else "-"
        rows.append((name, state, where, status.detail))
    name_width = max(len(row[0]) for row in rows)
    for name, state, where, detail in rows:
        print(f"  {name:<{name_width}}  {state:<7}  {where}  ({detail})")
    missing = [row[0] for row in rows if row[1] == "missing"]
    if missing:
        print(f"get one with `dlcc data fetch NAME` ({', '.join(missing)} missing)")
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    """Download dataset `args.name` (checksummed, atomic) unless it is already present."""
    name, data_dir = args.name, args.data_dir
    spec = get_spec(name)
    if spec.file_format == "embedded":
        print(f"{name}: embedded in scikit-learn, nothing to download")
        return 0
    result = fetch_dataset(name, data_dir)
    for filename in result.already_present:
        print(f"  {filename}: already present, verified")
    for filename in result.downloaded:
        print(f"  {filename}: downloaded, verified")
    print(f"{name}: ready in {result.folder}")
    return 0


def verify_command(args: argparse.Namespace) -> int:
    """Check dataset `args.name` file by file and print what each check found.

    Returns 0 when the dataset is present, readable and consistent with every checksum the
    registry knows. Raises DataError (exit 2) when a file is missing, unreadable, or fails
    its checksum; the message names the files and says what to do.
    """
    name, data_dir = args.name, args.data_dir
    report = verify_dataset(name, data_dir)
    location = report.folder if report.folder is not None else "scikit-learn"
    print(f"{name}: checking {location}")
    width = max(len(check.filename) for check in report.files)
    for check in report.files:
        print(f"  {check.status:<10}  {check.filename:<{width}}  {check.message}")
    if report.summary:
        print(f"  {report.summary}")
    for note in report.notes:
        print(f"  note: {note}")
    if not report.ok:
        failed = [check for check in report.files if check.status in FAILING_STATUSES]
        spec = get_spec(name)
        if all(check.status == MISSING for check in failed) and spec.file_format != "embedded":
            # Nothing damaged, just absent: say where it goes and how to get it.
            raise missing_dataset_error(spec, data_dir)
        fix = (
            f"delete the bad files and run `dlcc data fetch {name}`"
            if spec.downloadable
            else "put good copies of them in place (this dataset has no public download)"
        )
        failed_names = ", ".join(check.filename for check in failed)
        raise DataError(f"{name} failed verification ({failed_names}): {fix}")
    if report.fully_verified:
        verdict = "verified"
    elif report.folder is None:
        verdict = "usable (part of scikit-learn: nothing to checksum)"
    else:
        verdict = "usable, not fully verified (see notes)"
    print(f"{name}: {verdict}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Run the data tests on dataset `args.name` (`dlcc.data.checks`); 1 if it is not sound."""
    from dlcc.data.checks import check_dataset, report_text
    from dlcc.data.dataset import load_dataset

    data = load_dataset(args.name, args.data_dir, normalize=False)
    if data.y_train.ndim != 1:
        raise DataError(
            f"dlcc data check tests classification datasets (one label per example); "
            f"{args.name} has labels of shape {data.y_train.shape[1:]} per example (masks): "
            "check a classification dataset, e.g. digits or mnist"
        )
    report = check_dataset(data)
    print(report_text(report))
    return 1 if report["problems"] or any(report["overlap"].values()) else 0
