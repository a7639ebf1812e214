"""The summary of a class run: the score histogram and the tests most often failed.

Built only from the rows `dlcc.course.batch` wrote (graded now or skipped as unchanged), so a
resumed run summarises the whole class. `summarise` returns a dict (saved as
``summary.json``); `summary_text` renders it as the text tables printed after the run;
`save_summary_png` draws both as ``summary.png``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.course.catalogue import format_points

BINS = 10  # histogram bins of 10% of the maximum each
MOST_FAILED = 10


def summarise(assignment_id: str, records: list[dict], wall_time_s: float) -> dict:
    """The class summary as a JSON-ready dict."""
    graded = [r for r in records if r["status"] == "graded"]
    scores = sorted(r["score"] for r in graded)
    histogram = [0] * BINS
    for record in graded:
        fraction = record["score"] / record["max_score"] if record["max_score"] else 0.0
        histogram[min(int(fraction * BINS + 1e-9), BINS - 1)] += 1
    failed = Counter(
        test for record in graded for test, passed in record["tests"].items() if not passed
    )
    order = {test: index for index, test in enumerate(graded[0]["tests"])} if graded else {}
    ranked = sorted(failed.items(), key=lambda item: (-item[1], order.get(item[0], 0)))
    return {
        "assignment": assignment_id,
        "submissions": len(records),
        "graded": len(graded),
        "not_graded": [
            {"student": r["student"], "status": r["status"], "reason": r["reason"]}
            for r in records
            if r["status"] != "graded"
        ],
        "max_score": graded[0]["max_score"] if graded else None,
        "mean_score": sum(scores) / len(scores) if scores else None,
        "median_score": _median(scores),
        "histogram": [
            {"from_percent": 100 * i // BINS, "to_percent": 100 * (i + 1) // BINS, "count": n}
            for i, n in enumerate(histogram)
        ],
        "most_failed": [
            {"test": test, "failed": count, "of": len(graded)}
            for test, count in ranked[:MOST_FAILED]
        ],
        "wall_time_s": round(wall_time_s, 2),
    }


def summary_text(summary: dict) -> str:
    """The histogram and the most-failed tests as two text tables."""
    lines = [f"scores ({summary['graded']} graded of {summary['submissions']})"]
    if summary["graded"]:
        mean, median = summary["mean_score"], summary["median_score"]
        lines[0] += (
            f": mean {mean:.1f}, median {format_points(median)}, "
            f"out of {format_points(summary['max_score'])}"
        )
    top = max([b["count"] for b in summary["histogram"]] + [1])
    for bucket in summary["histogram"]:
        closing = "]" if bucket["to_percent"] == 100 else ")"
        label = f"[{bucket['from_percent']:>3}%, {bucket['to_percent']:>3}%{closing}"
        bar = "#" * round(40 * bucket["count"] / top)
        lines.append(f"  {label}  {bucket['count']:>4}  {bar}".rstrip())
    lines.append("")
    if summary["most_failed"]:
        width = max(len(entry["test"]) for entry in summary["most_failed"])
        lines.append("tests most often failed")
        for entry in summary["most_failed"]:
            lines.append(f"  {entry['test']:<{width}}  {entry['failed']:>4}/{entry['of']}")
    else:
        lines.append("tests most often failed: none")
    return "\n".join(lines) + "\n"


def write_summary(out: Path, summary: dict) -> list[Path]:
    """summary.json and summary.png in `out`; returns the paths written."""
    json_path = out / "summary.json"
    write_text_atomic(json_path, json.dumps(summary, indent=2) + "\n")
    return [json_path, save_summary_png(summary, out / "summary.png")]


def save_summary_png(summary: dict, path: Path) -> Path:
    """Two panels: the histogram, and the tests most often failed (horizontal bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from dlcc.plots import save_figure

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    buckets = summary["histogram"]
    left.bar(
        [b["from_percent"] for b in buckets],
        [b["count"] for b in buckets],
        width=100 / BINS,
        align="edge",
        edgecolor="black",
    )
    left.set_xlim(0, 100)
    left.set_xlabel("score (% of maximum)")
    left.set_ylabel("submissions")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title(f"{summary['assignment']}: {summary['graded']} graded")
    failed = list(reversed(summary["most_failed"]))
    if failed:
        right.barh([entry["test"] for entry in failed], [entry["failed"] for entry in failed])
        right.set_xlabel("submissions failing it")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.tick_params(axis="y", labelsize=7)
    else:
        right.text(0.5, 0.5, "no test failed", ha="center", va="center")
        right.set_axis_off()
    right.set_title("tests most often failed")
    return Path(save_figure(figure, path))


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2
