"""``dlcc pipeline init RECIPE...`` (a dvc.yaml for recipes) and ``dlcc pipeline plots
RUN_DIR... --out DIR`` (the plots stage of the DVC pipelines)."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    """Add ``dlcc pipeline init|plots`` to the top-level sub-parsers."""
    pipeline = commands.add_parser(
        "pipeline", help="DVC pipelines (dvc.yaml): write one for recipes, per-epoch plot tables"
    )
    sub = pipeline.add_subparsers(dest="pipeline_command", required=True)
    init = sub.add_parser(
        "init",
        help="write dvc.yaml (a training and an evaluation stage per recipe) and params.yaml",
        description="Write DIR/dvc.yaml with, for each recipe NAME, a stage train_NAME "
        "(dlcc train RECIPE --params params.yaml:recipes.NAME --out runs/NAME --no-track) and "
        "a stage eval_NAME (dlcc eval into results/NAME.json, the pipeline's metrics), and "
        "add recipes.NAME: {} to DIR/params.yaml (settings there are kept). Then run "
        "`dvc repro` in DIR, inside a git repository where `dvc init` was run.",
    )
    init.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe names or YAML files")
    init.add_argument("--dir", default=".", help="the folder of dvc.yaml (default: here)")
    init.add_argument(
        "--python",
        default="python",
        help="the Python that runs dlcc in the stages' commands (default python: the one "
        "on PATH when dvc runs them)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing dvc.yaml")
    init.set_defaults(handler=init_command)
    plots = sub.add_parser(
        "plots",
        help="write each run's history as OUT/NAME.csv, one row per epoch (for dvc plots)",
    )
    plots.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished or running runs")
    plots.add_argument("--out", required=True, help="the folder for the CSV files")
    plots.set_defaults(handler=plots_command)


def init_command(args: argparse.Namespace) -> int:
    from dlcc.pipeline.stages import write_pipeline

    dvc_yaml, params_yaml = write_pipeline(
        args.recipes, args.dir, python=args.python, force=args.force
    )
    print(f"wrote {dvc_yaml} and {params_yaml}; run the pipeline with `dvc repro`")
    return 0


def plots_command(args: argparse.Namespace) -> int:
    from dlcc.pipeline.plots import write_history_plots

    for path in write_history_plots(args.run_dirs, args.out):
        print(path)
    return 0
