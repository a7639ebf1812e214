"""Running an assignment's generated notebook, on the reference or on a fresh release.

The kernel is the test venv's ``python3`` (ipykernel); PYTHONPATH puts the chosen tree's
``src`` first, so the notebook imports the reference or the release's stubbed package.

    python tests/course/notebook_helpers.py a4      # both runs, a summary (for authors)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
CELL_TIMEOUT_S = 240


@dataclass
class NotebookRun:
    notebook: nbformat.NotebookNode
    error: CellExecutionError | None  # the first failing cell's error, or None
    failed_cell: int | None  # its index in notebook.cells
    seconds: float


def run_notebook(path: Path, tree: Path, cwd: Path) -> NotebookRun:
    """Execute `path` top to bottom with `tree`/src first on the path; stop at an error."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), *filter(None, [saved])])
    started = time.perf_counter()
    error = failed = None
    try:
        client.execute()
    except CellExecutionError as raised:
        error = raised
        failed = next(
            index
            for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "code"
            and any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        )
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return NotebookRun(notebook, error, failed, time.perf_counter() - started)


def first_part_cell(notebook: nbformat.NotebookNode) -> int:
    """Index of the first code cell after the handout's first ``## Part`` heading."""
    in_part = False
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and any(
            line.startswith("## Part") for line in cell.source.splitlines()
        ):
            in_part = True
        elif in_part and cell.cell_type == "code":
            return index
    raise AssertionError("the notebook has no code cell under a '## Part' heading")


def cell_heading(notebook: nbformat.NotebookNode, index: int) -> str:
    """The last Markdown heading above cell `index` (for messages)."""
    for cell in reversed(notebook.cells[:index]):
        if cell.cell_type == "markdown":
            headings = [line for line in cell.source.splitlines() if line.startswith("#")]
            if headings:
                return headings[-1]
    return "(no heading)"


def _main(assignment_id: str) -> int:
    import subprocess
    import tempfile

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        notebook = tmp / f"{assignment_id}.ipynb"
        subprocess.run(
            [python, "-m", "dlcc", "course", "notebook", assignment_id, "--out", str(tmp)],
            check=True,
            cwd=ROOT,
        )
        reference = run_notebook(notebook, ROOT, tmp)
        print(f"reference: {reference.seconds:.1f} s, ", end="")
        if reference.error is None:
            print("every cell ran")
        else:
            heading = cell_heading(reference.notebook, reference.failed_cell)
            print(f"FAILED at cell {reference.failed_cell} under {heading}:\n{reference.error}")
        release = tmp / "release"
        subprocess.run(
            [python, "-m", "dlcc", "course", "release", assignment_id, "--out", str(release)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        released = release / "assignments" / assignment_id / f"{assignment_id}.ipynb"
        if not released.is_file():  # a release made before releases carried the notebook
            subprocess.run(
                [python, "-m", "dlcc", "course", "notebook", assignment_id],
                check=True,
                cwd=release,
                env={**os.environ, "PYTHONPATH": str(release / "src")},
                stdout=subprocess.DEVNULL,
            )
            released = release / "notebooks" / f"{assignment_id}.ipynb"
        starter = run_notebook(released, release, released.parent)
        expected = first_part_cell(starter.notebook)
        print(f"release: {starter.seconds:.1f} s, ", end="")
        if starter.error is None:
            print("every cell ran: expected 'not implemented yet' at the first part")
            return 1
        text = "\n".join(starter.notebook.cells[starter.failed_cell].outputs[-1]["traceback"])
        print(
            f"stopped at cell {starter.failed_cell} (first part's first cell: {expected}) "
            f"under {cell_heading(starter.notebook, starter.failed_cell)}; "
            f"'not implemented yet' in it: {'not implemented yet' in text}"
        )
        return 0 if reference.error is None and starter.failed_cell == expected else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
