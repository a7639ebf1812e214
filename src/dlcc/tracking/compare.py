"""``dlcc track compare RUN...``: several runs side by side in the terminal.

A table of the final figures, and a plain-text chart of one metric per epoch (default:
the monitored metric of the first run), for people who will not open a browser.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dlcc.errors import DlccError

MARKS = "*o+x#@%&"
SPARK = " ▁▂▃▄▅▆▇█"


def load_run(ref: str, uri: str | None = None) -> dict:
    """{"name", "final": {...}, "curves": {metric: [(epoch, value)]}} for a run directory
    or an MLflow run id."""
    path = Path(ref)
    if path.is_dir():
        return _from_dir(path)
    if path.suffix or "/" in ref:
        raise DlccError(f"{ref} does not exist: pass run directories or MLflow run ids")
    return _from_store(ref, uri)


def _from_dir(path: Path) -> dict:
    history = path / "history.json"
    if not history.is_file():
        raise DlccError(
            f"{path} has no history.json: pass the --out directory of a run that has finished "
            "at least one epoch"
        )
    columns = json.loads(history.read_text(encoding="utf-8")).get("columns", {})
    epochs = columns.get("epoch", [])
    curves = {
        name: [(e, v) for e, v in zip(epochs, values, strict=False) if _finite(v)]
        for name, values in columns.items()
        if name != "epoch"
    }
    final = {}
    metrics = path / "metrics.json"
    if metrics.is_file():
        final = json.loads(metrics.read_text(encoding="utf-8"))
    return {"name": str(path), "final": final, "curves": curves}


def _from_store(run_id: str, uri: str | None) -> dict:
    from dlcc.tracking import store

    uri = uri or store.resolve_uri(Path("runs") / "x")
    client = store.client(uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise DlccError(
            f"{run_id} is neither a run directory nor a run in {uri}: pass run directories, "
            "or ids from `dlcc track ui` (set MLFLOW_TRACKING_URI for another store)"
        ) from None
    curves = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        curves[key] = sorted((m.step, m.value) for m in history)
    final = {key: value for key, value in run.data.metrics.items() if key.startswith("test_")}
    final.update(monitor=run.data.params.get("task.monitor"))
    name = run.data.tags.get("mlflow.runName", run_id)
    return {"name": f"{name} ({run_id[:8]})", "final": final, "curves": curves}


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def table(runs: list[dict]) -> str:
    """One row per run: epochs, best epoch, the monitored metric's best value, test figures."""
    keys = ["epochs", "best_epoch", "monitor", "best_value"]
    tests = sorted({k for run in runs for k in run["final"] if k.startswith("test_")})
    tests = [k for k in tests if k != "test_samples" and k != "test_checkpoint"]
    keys += [*tests, "train_seconds"]
    keys = [k for k in keys if any(run["final"].get(k) is not None for run in runs)]
    header = ["run", *keys]
    rows = [[run["name"], *(_cell(run["final"].get(k)) for k in keys)] for run in runs]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[1 + round((v - low) / span * (len(SPARK) - 2))] for v in values)


def chart(runs: list[dict], metric: str, width: int = 60, height: int = 12) -> str:
    """A text chart of `metric` against the epoch, one mark per run, and a legend."""
    series = [(run["name"], run["curves"].get(metric, [])) for run in runs]
    points = [p for _, curve in series for p in curve]
    if not points:
        return f"(no run has a {metric} curve)"
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    last_epoch = max(e for e, _ in points)
    first_epoch = min(e for e, _ in points)
    span, epochs = (high - low) or 1.0, (last_epoch - first_epoch) or 1
    grid = [[" "] * width for _ in range(height)]
    for index, (_, curve) in enumerate(series):
        for epoch, value in curve:
            column = round((epoch - first_epoch) / epochs * (width - 1))
            row = height - 1 - round((value - low) / span * (height - 1))
            grid[row][column] = MARKS[index % len(MARKS)]
    label = max(len(f"{high:.4g}"), len(f"{low:.4g}"))
    lines = [f"{metric} per epoch"]
    for row_index, row in enumerate(grid):
        tick = f"{high:.4g}" if row_index == 0 else f"{low:.4g}" if row_index == height - 1 else ""
        lines.append(f"{tick.rjust(label)} |{''.join(row)}")
    lines.append(" " * label + " +" + "-" * width)
    axis = f"epoch {first_epoch}"
    lines.append(" " * (label + 2) + axis + f"epoch {last_epoch}".rjust(width - len(axis)))
    for index, (name, curve) in enumerate(series):
        mark = MARKS[index % len(MARKS)]
        spark = sparkline([v for _, v in curve])
        lines.append(f"  {mark} {name}  {spark}")
    return "\n".join(lines)


def default_metric(runs: list[dict]) -> str:
    for run in runs:
        monitor = run["final"].get("monitor")
        if monitor and any(monitor in r["curves"] for r in runs):
            return monitor
    for name in ("val_loss", "train_loss"):
        if any(name in r["curves"] for r in runs):
            return name
    return next(iter(runs[0]["curves"]), "val_loss")


def compare(refs: list[str], metric: str | None = None, uri: str | None = None) -> str:
    runs = [load_run(ref, uri) for ref in refs]
    metric = metric or default_metric(runs)
    return table(runs) + "\n\n" + chart(runs, metric)
