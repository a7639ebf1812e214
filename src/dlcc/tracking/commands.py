"""``dlcc track ui | sync | compare | register``: the MLflow side of training runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dlcc.errors import DlccError

STORE_HELP = (
    "the store: $MLFLOW_TRACKING_URI if set, else sqlite:///RUNS/mlflow.db "
    "(RUNS: the folder that holds the run directories, default runs)"
)


def register(commands) -> None:
    """Add ``dlcc track ...`` to the top-level sub-parsers."""
    track = commands.add_parser(
        "track",
        help="experiment tracking (MLflow): UI, sync, compare, register",
        description="Every `dlcc train` and `dlcc numpy train` run is tracked in MLflow "
        "(off with --no-track or DLCC_TRACK=0). The store is $MLFLOW_TRACKING_URI if set, "
        "else a SQLite database beside the run directories (runs/mlflow.db, artifacts in "
        "runs/mlartifacts/). The run directory stays the source of truth.",
    )
    sub = track.add_subparsers(dest="track_command", required=True)

    ui = sub.add_parser(
        "ui",
        help="start the MLflow UI on 127.0.0.1 and print its URL",
        description="Start the MLflow UI (one worker, on 127.0.0.1 only) on the default "
        "store of --runs; Ctrl-C stops it. " + STORE_HELP + ".",
    )
    ui.add_argument("--runs", default="runs", help="the folder of run directories (default runs)")
    ui.add_argument("--port", type=int, default=5000, help="the port (default 5000)")
    ui.set_defaults(handler=ui_command)

    sync = sub.add_parser(
        "sync",
        help="upload what a run directory holds and its MLflow run lacks (exactly once)",
        description="Upload a run directory's parameters, metric steps, files and model "
        "to its MLflow run: the steps the store does not hold, and nothing twice, so it is "
        "safe to repeat. A run trained with --no-track gets a new MLflow run. The store "
        "is --uri, else the one in RUN_DIR/tracking.json, else " + STORE_HELP + ".",
    )
    sync.add_argument("run_dir", help="the --out directory of a training run")
    sync.add_argument("--uri", default=None, help="upload to this store instead")
    sync.add_argument("--experiment", default=None, help="the experiment of a new MLflow run")
    sync.set_defaults(handler=sync_command)

    compare = sub.add_parser(
        "compare",
        help="a table and a text chart of metrics across runs, in the terminal",
        description="Compare runs without a browser: a table of final figures, the "
        "settings that differ between the runs, and a text chart of one metric per epoch. "
        "RUN is a run directory or an MLflow run id. With --sweep, the best trials of a "
        "`dlcc sweep` instead.",
    )
    compare.add_argument("runs", nargs="*", metavar="RUN", help="run directories or run ids")
    compare.add_argument(
        "--sweep",
        default=None,
        metavar="SWEEP_DIR",
        help="rank the completed trials of this sweep (its sweep.json) and compare the best",
    )
    compare.add_argument(
        "--top", type=int, default=3, help="with --sweep: how many trials (default 3)"
    )
    compare.add_argument(
        "--metric", default=None, help="the metric to chart (default: the monitored one)"
    )
    compare.add_argument("--uri", default=None, help="the store of run ids (" + STORE_HELP + ")")
    compare.set_defaults(handler=compare_command)

    reg = sub.add_parser(
        "register",
        help="register a finished run's model under a name (a new version each time)",
        description="Sync RUN_DIR, then make its model a new version of registered model "
        "NAME, and print the name and version (the deployment commands serve models by "
        "name and version).",
    )
    reg.add_argument("run_dir", help="the --out directory of a finished, tracked run")
    reg.add_argument("--name", required=True, help="the registered model's name")
    reg.add_argument("--uri", default=None, help="the store (default: the run's own)")
    reg.set_defaults(handler=register_command)


def ui_command(args: argparse.Namespace) -> int:
    from dlcc.tracking import store

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and store.is_remote(uri):
        print(f"MLFLOW_TRACKING_URI names a server: open {uri} (its UI); nothing to start")
        return 0
    runs = Path(args.runs)
    if not uri and not runs.is_dir():
        raise DlccError(
            f"{runs} does not exist: pass --runs, the folder that holds your run directories "
            "(the parent of `dlcc train --out`)"
        )
    uri = uri or store.default_uri(runs / "x")
    db = store.sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *mlflow_command(),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--workers",
        "1",
        "--backend-store-uri",
        uri,
    ]
    if db is not None:
        command += ["--artifacts-destination", str((db.parent / store.ARTIFACTS).resolve())]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI: http://127.0.0.1:{args.port}  (store {uri}; Ctrl-C stops it)", flush=True)
    from dlcc.foreground import run_until_interrupted

    return run_until_interrupted(command, env)


def mlflow_command() -> list[str]:
    """The `mlflow` CLI of this Python (beside its executable, else ``python -m mlflow``)."""
    beside = Path(sys.executable).with_name("mlflow")
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"]


def sync_command(args: argparse.Namespace) -> int:
    from dlcc.tracking.sync import sync_run

    result = sync_run(args.run_dir, uri=args.uri, experiment=args.experiment)
    print(
        f"synced {args.run_dir} -> run {result['run_id']} of experiment "
        f"{result['experiment']!r} in {result['uri']}: {result['params']} parameters, "
        f"{result['metrics']} metric steps, {result['artifacts']} files uploaded"
    )
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from dlcc.tracking.compare import compare, compare_sweep

    if args.sweep is not None:
        if args.runs:
            raise DlccError("pass either run directories (or ids) or --sweep SWEEP_DIR, not both")
        print(compare_sweep(args.sweep, top=args.top, metric=args.metric))
        return 0
    if not args.runs:
        raise DlccError("nothing to compare: pass run directories or run ids, or --sweep DIR")
    print(compare(args.runs, metric=args.metric, uri=args.uri))
    return 0


def register_command(args: argparse.Namespace) -> int:
    from dlcc.tracking.registry import register as register_model

    name, version = register_model(args.run_dir, args.name, uri=args.uri)
    print(f"registered {args.run_dir} as model {name!r} version {version}")
    print(f"  load it with: dlcc.tracking.registry.resolve({name!r}, {version})")
    return 0
