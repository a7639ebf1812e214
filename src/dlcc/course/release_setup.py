"""The learner's set-up in a release: its Makefile, its pyproject (torch pinned) and README.

One documented command installs a release: ``make install``, from the release folder. It
makes ``./.venv``, installs the pinned CPU build of PyTorch the tests compare against (the
same pin as the course's own Makefile, ``TORCH_INSTALL``), then the package with its test
tools. Every command the README gives runs programs from ``.venv/bin`` by path, so it works
in a fresh shell with nothing activated.

The README marks the code blocks a learner runs with ``<!-- learner: setup -->`` and
``<!-- learner: grade -->`` (the handouts mark theirs with ``<!-- learner: commands -->``);
a test runs them, as written, in a clean virtualenv.
"""

from __future__ import annotations

import re
from pathlib import Path

from dlcc.course.catalogue import Assignment, format_points, tomllib
from dlcc.course.errors import CourseError
from dlcc.course.notebook import notebook_file

DEFAULT_TORCH_INSTALL = "torch==2.13.0"
GPU_INDEX = "https://download.pytorch.org/whl/cu126"
MARKER = re.compile(r"<!-- learner: (?P<name>[a-z-]+) -->\n+```[a-z]*\n(?P<body>.*?)```", re.S)
TORCH_INSTALL_LINE = re.compile(r"^TORCH_INSTALL\s*\?=\s*(?P<value>\S.*?)\s*$", re.M)
TORCH_REQUIREMENT = re.compile(r'"torch(?:\s*[<>=!~][^"]*)?"')


def torch_install(root: Path) -> str:
    """The pip requirement of the course Makefile's ``TORCH_INSTALL`` (the CPU build the tests
    use), or `DEFAULT_TORCH_INSTALL` when the course root has no Makefile saying so."""
    try:
        match = TORCH_INSTALL_LINE.search((root / "Makefile").read_text(encoding="utf-8"))
    except OSError:
        match = None
    return match.group("value") if match else DEFAULT_TORCH_INSTALL


def torch_pin(requirement: str) -> str:
    """``torch==2.13.0`` from a TORCH_INSTALL value; `CourseError` if it pins no version."""
    match = re.fullmatch(r"torch==(?P<version>[0-9][^\s]*)(\s.*)?", requirement.strip())
    if not match:
        raise CourseError(
            f"Makefile: TORCH_INSTALL is {requirement!r}; a release pins torch, so write it as "
            "torch==VERSION"
        )
    return f"torch=={match.group('version')}"


def pinned_pyproject(text: str, pin: str) -> str:
    """The course pyproject with its ``torch`` extra's torch requirement replaced by `pin`, so
    that ``pip install -e ".[dev,torch]"`` never pulls the newest torch and its CUDA stack.
    A pyproject without a torch extra is returned unchanged."""
    lines = text.splitlines(keepends=True)
    replaced = 0
    for index, line in enumerate(lines):
        if re.match(r"\s*torch\s*=\s*\[", line) and TORCH_REQUIREMENT.search(line):
            lines[index] = TORCH_REQUIREMENT.sub(f'"{pin}"', line, count=1)
            replaced += 1
    if replaced > 1:
        raise CourseError(
            'pyproject.toml: expected one line `torch = ["torch...", ...]` in '
            "[project.optional-dependencies] to pin in the release, found several"
        )
    return "".join(lines)


def install_extras(pyproject: Path) -> str:
    """``[dev,torch,notebook]``: the extras of the course's pyproject a learner installs (the
    test tools, the test oracles, Jupyter for the notebook), or "" when it declares none."""
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CourseError(f"{pyproject}: cannot read it: {error}") from None
    declared = project.get("optional-dependencies", {})
    extras = [name for name in ("dev", "torch", "notebook") if name in declared]
    return f"[{','.join(extras)}]" if extras else ""


def render_makefile(assignment: Assignment, torch_requirement: str, extras: str) -> str:
    """The release's Makefile: install, grade, test, doctor, notebook and clean, in ./.venv."""
    notebook = notebook_file(assignment)
    gpu = f'TORCH_INSTALL="{torch_requirement} --index-url {GPU_INDEX}"'
    return f"""# {assignment.id}: each target sets itself up in ./.venv, idempotently. From here:
#   make install   ./.venv with the course package, pytest and the CPU build of PyTorch
#   make grade     grade your work: one line per test, then the total
#   make test      the public tests, stopping at the first failure, with full tracebacks
#   make doctor    check this machine (dlcc doctor)
#   make notebook  open the assignment's notebook in JupyterLab
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU build of PyTorch the tests compare against. With an NVIDIA GPU, install a CUDA
# build of the same version instead, e.g.
#   rm -f .venv/.installed && make install {gpu}
TORCH_INSTALL ?= {torch_requirement}

.PHONY: install grade test doctor notebook clean

$(VENV)/.installed: pyproject.toml
\ttest -x $(PY) || $(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --quiet $(TORCH_INSTALL)
\t$(PY) -m pip install --quiet -e ".{extras}"
\ttouch $@

install: $(VENV)/.installed

grade: install
\t$(VENV)/bin/dlcc course grade {assignment.id} --submission .

test: install
\t$(PY) -m pytest {assignment.tests_dir} -x

doctor: install
\t$(VENV)/bin/dlcc doctor

notebook: install
\t$(VENV)/bin/jupyter lab {notebook}

clean:
\trm -rf $(VENV) .pytest_cache
"""


def render_readme(assignment: Assignment, torch_requirement: str, extras: str = "") -> str:
    """The release's README.md: how to set up, what to edit, how to grade, what passing is."""
    public = format_points(assignment.points("public"))
    hidden = format_points(assignment.release_hidden_points or 0)
    sources = "\n".join(f"- `{source}`" for source in assignment.sources)
    names = ", ".join(Path(source).name for source in assignment.sources)
    pin = torch_pin(torch_requirement)
    total = f"Total: {public}/{public} (100.0%)"
    hidden_text = ""
    if assignment.release_hidden_points:
        total += f"; hidden tests ({hidden} points) are graded after you submit"
        hidden_text = (
            f" The {hidden} points of hidden tests are not in this folder: they are graded "
            "after you submit, and check the same code on other cases, so make your code "
            "right, not just the public tests pass (`--hidden` works only on the instructor's "
            "copy)."
        )
    return f"""# {assignment.id}: {assignment.title}

Your starter code for {assignment.id}. Read the handout first:
[{assignment.handout}]({assignment.handout}).

This folder is a copy of the course package, `dlcc`, in which the code you are to write has
been replaced by stubs: `raise NotImplementedError("{assignment.id}: ...")`, often with a hint in
a comment just above it.

## Set up

One command, run from this folder, installs everything into `./.venv`: the course package,
pytest, and the CPU build of PyTorch the tests compare against (`{pin}`).

<!-- learner: setup -->
```bash
make install
```

Without `make`, the same in three commands:
`python3 -m venv .venv`, then `.venv/bin/pip install {torch_requirement}`, then
`.venv/bin/pip install -e ".{extras}"`.

With an NVIDIA GPU (not needed here), install a CUDA build of the same version instead:
`make install TORCH_INSTALL="{torch_requirement} --index-url {GPU_INDEX}"`.

Nothing needs activating: every command below runs the programs in `.venv/bin` by their
path, so it works as written in a new terminal, from this folder.

## What to edit

{sources}

Replace each `raise NotImplementedError("{assignment.id}: ...")` with your code. Leave the other
files alone: the grader uses its own copy of every file not listed here.

## Check your work

<!-- learner: grade -->
```bash
.venv/bin/dlcc course grade {assignment.id} --submission .
```

`make grade` does the same. Add `--json results.json` to also write the results in
Gradescope's format. The grader prints one line per test: its part, its name, the points
earned out of the points possible, and a one-line feedback (the failing check, or where
your code raised). Subtotals per part and the total follow. To see full tracebacks, run the
public tests directly: `.venv/bin/python -m pytest {assignment.tests_dir} -x` (or
`make test`).

## The notebook

The handout also comes as a Jupyter notebook, `{notebook_file(assignment)}`: the same text,
with its checks as cells you run one by one (a gradient check, a picture, a short training)
while you write the code. Open it in JupyterLab (`make notebook` does the same):

<!-- learner: notebook -->
```bash
.venv/bin/jupyter lab {notebook_file(assignment)}
```

Edit the `.py` files listed above, not the notebook, then run the cell again: the notebook
reloads your code by itself. The grader grades the `.py` files only. A cell that reaches code
you have not written yet stops with `not implemented yet: {assignment.id}: ...` and the file
and line to write it in.

## What passing looks like

Every line says `passed` and the last line reads
`{total}`. An unimplemented stub shows
as `not implemented yet: {assignment.id}: ...`; a time-out or a crash is charged to the one
test it happened in, and the others still run.{hidden_text}

## Submit

Upload the files you edited ({names}). Their folder layout does not matter.
"""


def learner_blocks(text: str) -> dict[str, str]:
    """The marked code blocks of a README or handout: marker name -> the block's text."""
    return {match.group("name"): match.group("body") for match in MARKER.finditer(text)}
