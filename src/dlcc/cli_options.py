"""Options shared by several commands. A leaf: it imports nothing of dlcc.

Command modules take their shared options from here, never from `dlcc.cli`, so that no
package imports the command line back.
"""

from __future__ import annotations

import argparse


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``: where datasets live."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where datasets live (default: $DLCC_DATA_DIR, else ~/.cache/dlcc)",
    )


def add_device_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--device``: auto, cpu, cuda, cuda:N or mps."""
    parser.add_argument(
        "--device", default=default, help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_track_arguments(parser: argparse.ArgumentParser, experiment: str) -> None:
    """``--no-track`` and ``--experiment``: MLflow experiment tracking (on by default)."""
    group = parser.add_argument_group(
        "experiment tracking (MLflow; store: $MLFLOW_TRACKING_URI, else mlflow.db beside "
        "the run directory)"
    )
    group.add_argument(
        "--no-track",
        action="store_true",
        help="do not track this run in MLflow (DLCC_TRACK=0 does the same)",
    )
    group.add_argument(
        "--experiment", default=None, help=f"the MLflow experiment's name (default: {experiment})"
    )
