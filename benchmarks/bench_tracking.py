"""Tracking overhead: `dlcc train` with MLflow tracking on against off, in one run.

Each repeat trains the recipe twice into fresh run directories, once with tracking on
(the default SQLite store, in the benchmark's own folder) and once with ``--no-track``,
in alternating order (on/off, then off/on, ...) so that machine noise hits both alike.
Each training is a separate ``python -m dlcc train`` process, timed from start to exit:
the overhead then includes everything tracking costs a user (importing mlflow, creating
the MLflow run, one request per epoch, uploading files and the model at the end). Also
reported: the in-loop training time (metrics.json ``train_seconds``), which tracking
touches only through the per-epoch log call, and the CPU time (user + system) the
training process used (``getrusage`` of the child): on a shared machine, where other work
stretches wall-clock times by tens of percent, the CPU a run itself spends is the steadier
measure of what tracking adds.

The store's database is created (its migrations run) by one untimed warm-up run first:
that is once per project, not per run.

    python benchmarks/bench_tracking.py [--recipe mnist_cnn] [--repeats 5] \
        [--set train.epochs=1 ...] [--json benchmarks/results/tracking_overhead.json]

The acceptance figure: median(on) / median(off) - 1 <= 3% on mnist_cnn.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlcc.atomic import write_text_atomic

RESULTS = Path(__file__).with_name("results") / "tracking_overhead.json"


def train_once(recipe: str, out: Path, overrides: list[str], track: bool) -> dict:
    command = [sys.executable, "-m", "dlcc", "train", recipe, "--out", str(out), "--no-progress"]
    for override in overrides:
        command += ["--set", override]
    if not track:
        command.append("--no-track")
    env = {**os.environ, "DLCC_TRACK": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"training failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    if track and "dlcc: warning" in done.stderr:
        sys.exit(f"tracking warned, so this is not a tracked run:\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall_seconds": wall, "train_seconds": metrics["train_seconds"], "cpu_seconds": cpu}


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist_cnn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    runs: dict[str, list[dict]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as folder:
        root = Path(folder) / "runs"
        print(f"warm-up (creates {root}/mlflow.db, untimed)", flush=True)
        train_once(args.recipe, root / "warmup", args.overrides, track=True)
        for repeat in range(args.repeats):
            order = ("on", "off") if repeat % 2 == 0 else ("off", "on")
            for mode in order:
                result = train_once(
                    args.recipe, root / f"{mode}-{repeat}", args.overrides, mode == "on"
                )
                runs[mode].append(result)
                print(
                    f"repeat {repeat + 1}/{args.repeats} tracking {mode:3s}: "
                    f"{result['wall_seconds']:.2f}s wall, {result['train_seconds']:.2f}s training, "
                    f"{result['cpu_seconds']:.2f}s CPU",
                    flush=True,
                )
    report = {
        "recipe": args.recipe,
        "overrides": args.overrides,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    for measure in ("wall_seconds", "train_seconds", "cpu_seconds"):
        on = [run[measure] for run in runs["on"]]
        off = [run[measure] for run in runs["off"]]
        pairs = [a / b - 1 for a, b in zip(on, off, strict=True)]
        report[measure] = {
            "on": summary(on),
            "off": summary(off),
            "overhead": statistics.median(on) / statistics.median(off) - 1,
            "overhead_per_pair": summary(pairs),
        }
        print(
            f"{measure}: on {statistics.median(on):.2f}s, off {statistics.median(off):.2f}s "
            f"(medians): overhead {report[measure]['overhead']:+.1%} "
            f"(pairs {min(pairs):+.1%} .. {max(pairs):+.1%})"
        )
    report["passes_3_percent"] = {
        measure: report[measure]["overhead"] <= 0.03 for measure in ("wall_seconds", "cpu_seconds")
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
