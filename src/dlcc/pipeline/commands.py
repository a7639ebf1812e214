"""``dlcc pipeline plots RUN_DIR... --out DIR``: the plots stage of the DVC pipelines."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    """Add ``dlcc pipeline plots`` to the top-level sub-parsers."""
    pipeline = commands.add_parser(
        "pipeline", help="helpers for the DVC pipelines (dvc.yaml): per-epoch plot tables"
    )
    sub = pipeline.add_subparsers(dest="pipeline_command", required=True)
    plots = sub.add_parser(
        "plots",
        help="write each run's history as OUT/NAME.csv, one row per epoch (for dvc plots)",
    )
    plots.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished or running runs")
    plots.add_argument("--out", required=True, help="the folder for the CSV files")
    plots.set_defaults(handler=plots_command)


def plots_command(args: argparse.Namespace) -> int:
    from dlcc.pipeline.plots import write_history_plots

    for path in write_history_plots(args.run_dirs, args.out):
        print(path)
    return 0
