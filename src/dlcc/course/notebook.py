"""An assignment's Jupyter notebook, made from its handout: one source, no second copy.

The handout (``assignments/aN/README.md``) is the text of the notebook. A fenced
```` ```python ```` block right after the line ``<!-- notebook: run -->`` becomes a code cell
the learner runs; every other part of the handout, other code blocks included (set-up
commands, the shape of a stub), stays Markdown. So the handout reads the same on the
course site and on GitHub, and the checks in it are the ones the notebook runs::

    <!-- notebook: run -->
    ```python
    print(nn.gradcheck(nn.Linear(5, 3, dtype=np.float64), np.random.randn(4, 5)))
    ```

`build_notebook` does the conversion (with jupytext's Markdown reader) and puts one cell of
its own first: `prepare_kernel(aN)`, which turns on autoreload (an edit to a ``.py`` file is
seen by the next cell run) and makes a stub's ``NotImplementedError`` read
``not implemented yet: ...`` with the file and line to edit. The grader grades the ``.py``
files, never the notebook. `dlcc course notebook` and `dlcc course release` write it.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

from dlcc.course.errors import CourseError

RUN_MARKER = "<!-- notebook: run -->"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _mark_cells(markdown: str, where: str) -> tuple[str, int]:
    """The handout as jupytext Markdown: run blocks stay code, every other fence is wrapped
    in ``<!-- #region -->`` so it stays Markdown. Returns the text and the run-block count."""
    lines = markdown.splitlines()
    out: list[str] = []
    runs = 0
    pending: int | None = None  # line number of a run marker waiting for its block
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == RUN_MARKER:
            if pending is not None:
                raise CourseError(f"{where}:{pending}: {RUN_MARKER} is not followed by a block")
            pending = index + 1
            index += 1
            continue
        opening = _FENCE.match(line)
        if opening is None:
            if pending is not None and line.strip():
                raise CourseError(
                    f"{where}:{pending}: {RUN_MARKER} must be followed by a ```python block; "
                    f"line {index + 1} is {line.strip()[:60]!r}. Put the block right after "
                    "the marker, or remove the marker."
                )
            out.append(line)
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise CourseError(
                f"{where}:{index + 1}: the code block opened here is never closed "
                f"(expected a line {fence})."
            )
        block = lines[index : end + 1]
        if pending is not None:
            info = opening["info"].strip()
            if info != "python" or opening["indent"]:
                raise CourseError(
                    f"{where}:{pending}: {RUN_MARKER} must be followed by a ```python block "
                    f"at the start of the line; found {line.strip()[:60]!r}."
                )
            out.extend(["```python", *block[1:-1], "```"])
            runs += 1
            pending = None
        elif opening["indent"]:
            out.extend(block)  # inside a list item: jupytext leaves it in the Markdown
        else:
            out.extend(["<!-- #region -->", *block, "<!-- #endregion -->"])
        index = end + 1
    if pending is not None:
        raise CourseError(f"{where}:{pending}: {RUN_MARKER} at the end, with no block after it")
    return "\n".join(out) + "\n", runs


def build_notebook(markdown: str, assignment_id: str, source: str):
    """The notebook (an `nbformat.NotebookNode`, version 4) of a handout's Markdown.

    `source` is the handout's path as the learner sees it (``assignments/a1/README.md``);
    the notebook's first Markdown cell names it. Cell ids are numbered, so the same
    handout gives the same file. Raises `CourseError` for a misplaced run marker or an
    unclosed code block, naming the line.
    """
    import jupytext
    import nbformat

    text, runs = _mark_cells(markdown, source)
    notebook = jupytext.reads(text, fmt="md")
    intro = nbformat.v4.new_markdown_cell(
        f"*Made from `{source}` by `dlcc course notebook`: edit the "
        "`.py` files the handout names, not this notebook, and rerun a cell to see your "
        "change. The grader grades the `.py` files.*"
    )
    setup = nbformat.v4.new_code_cell(
        f'from dlcc.course.notebook import prepare_kernel\n\nprepare_kernel("{assignment_id}")'
    )
    cells = [intro, setup]
    for cell in notebook.cells:
        cell.metadata = {}  # jupytext's own keys: none are needed here
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    notebook.cells = cells
    for number, cell in enumerate(notebook.cells):
        cell.id = f"{assignment_id}-{number:03d}"
    notebook.metadata = {
        "kernelspec": dict(_KERNELSPEC),
        "language_info": {"name": "python"},
        "dlcc": {"assignment": assignment_id, "source": source, "checks": runs},
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return notebook


def notebook_text(root: Path, assignment) -> str:
    """The ``.ipynb`` JSON of a catalogued assignment's handout under course `root`."""
    import nbformat

    handout = root / assignment.handout
    try:
        markdown = handout.read_text(encoding="utf-8")
    except OSError as error:
        raise CourseError(
            f"{assignment.id}: cannot read its handout {handout}: {error.strerror or error}. "
            "The catalogue's `handout` must name a Markdown file under the course root."
        ) from None
    notebook = build_notebook(markdown, assignment.id, assignment.handout)
    return nbformat.writes(notebook) + "\n"


def notebook_file(assignment) -> str:
    """Where a release keeps the notebook, relative to its root: beside the handout,
    ``assignments/aN/aN.ipynb``."""
    return str(Path(assignment.handout).parent / f"{assignment.id}.ipynb")


def write_notebook(root: Path, assignment, path: Path) -> Path:
    """Write the notebook of `assignment` to `path`, all or nothing."""
    from dlcc.atomic import write_text_atomic

    text = notebook_text(root, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


# ---- in the learner's kernel --------------------------------------------------------------
def prepare_kernel(assignment_id: str) -> None:
    """The notebook's first cell: autoreload on, and stubs that say what to do.

    Outside IPython (the handout's code pasted into ``python``) this does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.run_line_magic("load_ext", "autoreload")
    shell.run_line_magic("autoreload", "2")
    shell.set_custom_exc((NotImplementedError,), _not_implemented)
    print(f"{assignment_id}: ready (autoreload on: edits to the .py files apply to the next run)")


def _not_implemented(shell, etype, value, tb, tb_offset=None) -> None:
    """A stub's NotImplementedError: the course's one-line verdict, the place, the traceback.

    IPython calls this instead of showing the error (and still marks the cell failed); it
    shows the lines itself, as the error output of the cell.
    """
    frames = traceback.extract_tb(tb)
    lines = [f"not implemented yet: {value}".rstrip()]
    if frames:
        last = frames[-1]
        lines.append(
            f"Write it in {last.filename}, line {last.lineno} (the comments above the raise "
            "are hints), then run this cell again."
        )
    stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset)
    shell._showtraceback(etype, value, [*lines, *stb])
