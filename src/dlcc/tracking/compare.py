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
    return {"name": str(path), "params": _dir_params(path), "final": final, "curves": curves}


def _dir_params(path: Path) -> dict[str, str]:
    """config.yaml's settings flattened as MLflow holds them (`sync.flat_params`); {} when
    the folder has no readable config.yaml."""
    from dlcc.tracking.sync import flat_params, run_settings

    try:
        _, settings = run_settings(path)
    except DlccError:
        return {}
    return flat_params(settings)


def _from_store(run_id: str, uri: str | None) -> dict:
    from dlcc.tracking import store

    return run_from_store(run_id, uri or store.resolve_uri(Path("runs") / "x"))


def run_from_store(run_id: str, uri: str) -> dict:
    """{"name", "params", "final", "curves"} of MLflow run `run_id` in the store at `uri`.

    - "name": the run's name (tag ``mlflow.runName``, else the id) and the id's first 8
      characters in brackets: ``"mnist_cnn_smoke (3f9a1c2e)"``;
    - "params": every parameter of the run, {key: value}, values as the store holds them
      (text);
    - "final": the last value of every metric whose name starts with ``test_``, plus
      "monitor": the parameter ``task.monitor`` (None when the run has none);
    - "curves": for every metric of the run, its whole history as (step, value) pairs
      sorted by step: {"val_loss": [(1, 0.93), (2, 0.71)], ...}.
    """
    from dlcc.tracking import store

    client = store.client(uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise DlccError(
            f"{run_id} is neither a run directory nor a run in {uri}: pass run directories, "
            "or ids from `dlcc track ui` (set MLFLOW_TRACKING_URI for another store)"
        ) from None
    # BEGIN SOLUTION run_from_store: a run's params, final test figures and metric histories
    params = dict(run.data.params)
    curves = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        curves[key] = sorted((m.step, m.value) for m in history)
    final = {key: value for key, value in run.data.metrics.items() if key.startswith("test_")}
    final["monitor"] = params.get("task.monitor")
    name = run.data.tags.get("mlflow.runName", run_id)
    return {"name": f"{name} ({run_id[:8]})", "params": params, "final": final, "curves": curves}
    # END SOLUTION
    # BEGIN PROMPT
    # `run` is an mlflow.entities.Run: run.data.params and run.data.metrics are dicts
    # (a metric's *latest* value only), run.data.tags holds "mlflow.runName". A metric's
    # every step is client.get_metric_history(run_id, key): a list of Metric objects with
    # .step and .value, in no promised order. Build and return the dict of the docstring.
    # END PROMPT


def differing_params(runs: list[dict]) -> dict[str, list]:
    """The settings that differ between runs: {key: [value in run 1, value in run 2, ...]}.

    `runs` are dicts with "params" ({key: text}, as `load_run` returns them). A key that
    some runs lack differs too (None in their places). Keys in sorted order; {} when every
    run has the same settings (or there is one run).
    """
    # BEGIN SOLUTION differing_params: the keys whose values are not the same in every run
    keys = sorted({key for run in runs for key in run["params"]})
    values = {key: [run["params"].get(key) for run in runs] for key in keys}
    return {key: row for key, row in values.items() if any(v != row[0] for v in row)}
    # END SOLUTION
    # BEGIN PROMPT
    # Collect every key of every run's "params". For each, list its value in each run, in
    # the runs' order (run["params"].get(key): None where a run lacks it), and keep the
    # keys whose values are not all equal. Return them sorted by key.
    # END PROMPT


def params_table(runs: list[dict]) -> str:
    """The settings that differ, one row per key and one column per run."""
    differing = differing_params(runs)
    if not differing:
        return "settings: the same in every run"
    header = ["setting", *(f"[{index + 1}]" for index in range(len(runs)))]
    rows = [[key, *(_short(_cell(value)) for value in values)] for key, values in differing.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["settings that differ ([N]: the Nth run, in the table's order)"]
    for cells in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


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


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


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
    return table(runs) + "\n\n" + params_table(runs) + "\n\n" + chart(runs, metric)


# ---- sweeps ------------------------------------------------------------------------------


def ranked_trials(summary: dict) -> list[dict]:
    """The completed trials of a sweep, best first.

    `summary` is a sweep's sweep.json (`dlcc sweep`): "direction" ("minimize" or
    "maximize") and "trials", each with "number", "state" (COMPLETE, PRUNED, FAIL, ...),
    "value" (the objective, or None) and "params". Only COMPLETE trials with a value are
    ranked (a pruned trial's last value is of an unfinished training); equal values keep
    the lower trial number first.
    """
    # BEGIN SOLUTION ranked_trials: COMPLETE trials with a value, sorted best first
    sign = 1.0 if summary["direction"] == "minimize" else -1.0
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE" and t["value"] is not None]
    return sorted(done, key=lambda trial: (sign * trial["value"], trial["number"]))
    # END SOLUTION
    # BEGIN PROMPT
    # Keep the trials whose "state" is "COMPLETE" and whose "value" is not None. Sort them
    # by value, ascending when summary["direction"] is "minimize" and descending when it
    # is "maximize", ties by "number" (ascending). Return the trial dicts themselves.
    # END PROMPT


def read_sweep(sweep_dir: str | Path) -> dict:
    """SWEEP_DIR/sweep.json, or a one-line DlccError saying what to pass."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise DlccError(
            f"{path} does not exist: pass --sweep the --out folder of a finished "
            "`dlcc sweep` (it writes sweep.json there)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def sweep_table(summary: dict, top: int) -> tuple[str, list[str]]:
    """(the leaderboard of the `top` best trials, their run directories that exist)."""
    ranked = ranked_trials(summary)
    counts = {}
    for trial in summary["trials"]:
        counts[trial["state"]] = counts.get(trial["state"], 0) + 1
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(counts.items()))
    lines = [
        f"sweep {summary.get('name')}: {summary.get('metric')} ({summary['direction']}), "
        f"{len(summary['trials'])} trials ({states or 'none'})"
    ]
    for rank, trial in enumerate(ranked[:top], start=1):
        params = ", ".join(f"{key}={_cell(value)}" for key, value in trial["params"].items())
        lines.append(f"  {rank}. trial {trial['number']}  {trial['value']:.6g}  {params}")
    if not ranked:
        lines.append("  no trial has completed")
    dirs = [t["run_dir"] for t in ranked[:top] if t.get("run_dir") and Path(t["run_dir"]).is_dir()]
    return "\n".join(lines), dirs


def compare_sweep(sweep_dir: str | Path, top: int = 3, metric: str | None = None) -> str:
    """The leaderboard of a sweep, then `compare` of its best `top` trials' runs."""
    if top < 1:
        raise DlccError(f"--top: expected an integer >= 1, got {top}")
    text, dirs = sweep_table(read_sweep(sweep_dir), top)
    if len(dirs) < 1:
        return text
    return text + "\n\n" + compare(dirs, metric=metric)
