"""Per-epoch tables for `dvc plots`: one CSV per run, one row per epoch.

DVC's plots read a list of records (CSV, TSV or JSON rows); history.json keeps columns
(section 1 of DESIGN.md), so this writes the same values row by row. A value that does not
exist (``null`` in history.json) is an empty cell.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError
from dlcc.runs import read_run
from dlcc.runs.rundir import read_history


def history_csv(run_dir: str | Path) -> str:
    """RUN_DIR's history.json as CSV text: a header of its columns, then one row per epoch."""
    saved = read_run(run_dir)
    history = read_history(saved.run)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(history.columns)
    writer.writerow(columns)
    for row in history.rows():
        writer.writerow(["" if row[name] is None else row[name] for name in columns])
    return buffer.getvalue()


def write_history_plots(run_dirs: list[str | Path], out: str | Path) -> list[Path]:
    """Write OUT/<run folder name>.csv for each run; every table is built before any write.

    Raises DlccError when two runs share a folder name (their tables would collide).
    """
    names = [Path(run_dir).resolve().name for run_dir in run_dirs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DlccError(
            f"runs with the same folder name {', '.join(repeated)}: each gets OUT/NAME.csv, "
            "so give the runs different names"
        )
    tables = [history_csv(run_dir) for run_dir in run_dirs]
    written = []
    for name, table in zip(names, tables, strict=True):
        path = Path(out) / f"{name}.csv"
        write_text_atomic(path, table)
        written.append(path)
    return written
