"""The assignments as notebooks (`dlcc.course.notebook`, `dlcc course notebook`).

- the conversion: run blocks become code cells, every other block stays Markdown, a
  misplaced marker is refused with its line; the same handout gives the same file;
- one source: a sentence changed in a handout is in the notebook;
- every ready assignment's notebook runs top to bottom on the reference, with checks in
  every part, and on a fresh release stops at the first part with "not implemented yet";
- the README's two notebook commands work as written in a fresh shell (a real JupyterLab
  on 127.0.0.1, which serves the notebook and starts its kernel).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest
from notebook_helpers import cell_heading, first_part_cell, run_notebook

import dlcc
from dlcc.course.catalogue import load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.notebook import RUN_MARKER, build_notebook, notebook_file, notebook_text
from processes import stop_process

REPO = Path(dlcc.__file__).resolve().parents[2]
READY = [a.id for a in load_catalogue(REPO).assignments.values() if a.status == "ready"]

HANDOUT = f"""# Assignment 9: a test

Set up:

```bash
make install
```

The stub looks like this (not run):

```python
raise NotImplementedError("a9: f")
```

1. A list item with its own block, which stays Markdown:

   ```python
   also_not_run()
   ```

## Part 1: the thing

Run this:

{RUN_MARKER}
```python
print(1 + 1)
```

~~~text
a sample output
~~~
"""


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_only_marked_blocks_become_code_cells():
    notebook = build_notebook(HANDOUT, "a9", "assignments/a9/README.md")
    code = [source for kind, source in cells(notebook) if kind == "code"]
    # the first cell is the notebook's own set-up; then exactly the one marked block
    assert code == [
        'from dlcc.course.notebook import prepare_kernel\n\nprepare_kernel("a9")',
        "print(1 + 1)",
    ]
    markdown = "\n".join(source for kind, source in cells(notebook) if kind == "markdown")
    for text in (
        "```bash\nmake install\n```",
        'raise NotImplementedError("a9: f")',
        "also_not_run()",
        "~~~text\na sample output\n~~~",
        "## Part 1: the thing",
    ):
        assert text in markdown
    assert RUN_MARKER not in markdown and "#region" not in markdown
    assert notebook.metadata["dlcc"] == {
        "assignment": "a9",
        "source": "assignments/a9/README.md",
        "checks": 1,
    }
    nbformat.validate(notebook)


def test_the_same_handout_gives_the_same_file():
    first = nbformat.writes(build_notebook(HANDOUT, "a9", "x.md"))
    assert first == nbformat.writes(build_notebook(HANDOUT, "a9", "x.md"))
    assert [cell["id"] for cell in json.loads(first)["cells"]][:3] == ["a9-000", "a9-001", "a9-002"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"intro\n{RUN_MARKER}\nsome text\n```python\nx\n```\n",
            r"x\.md:2: .* line 3 is 'some text'",
        ),
        (f"{RUN_MARKER}\n```bash\nls\n```\n", r"x\.md:1: .*found '```bash'"),
        (f"1. item\n{RUN_MARKER}\n   ```python\n   x\n   ```\n", r"x\.md:2: .*start of the line"),
        (f"text\n\n{RUN_MARKER}\n", r"x\.md:3: .*at the end"),
        ("a\n```python\nnever closed\n", r"x\.md:2: the code block opened here is never closed"),
    ],
)
def test_a_misplaced_marker_or_an_open_block_is_refused_with_its_line(text, message):
    with pytest.raises(CourseError, match=message):
        build_notebook(text, "a9", "x.md")


def test_a_sentence_changed_in_a_handout_is_in_its_notebook(tmp_path):
    """One source: the course root is copied, one handout sentence is changed there."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "assignments", root / "assignments")
    for name in ("src", "tests"):  # the catalogue checks that its files exist
        (root / name).symlink_to(REPO / name)
    assignment = load_catalogue(root).get("a3")
    handout = root / assignment.handout
    text = handout.read_text()
    sentence = "The membranes are drawn one pixel thicker in this test's copy only."
    changed = text.replace("\n## Part 1", f"\n{sentence}\n\n## Part 1", 1)
    assert changed != text
    handout.write_text(changed)
    notebook = json.loads(notebook_text(root, assignment))
    assert any(sentence in "".join(cell["source"]) for cell in notebook["cells"])
    assert not any(
        sentence in "".join(c["source"])
        for c in json.loads(notebook_text(REPO, load_catalogue(REPO).get("a3")))["cells"]
    )


@pytest.mark.parametrize("assignment_id", READY)
def test_every_part_has_a_check_to_run(assignment_id):
    assignment = load_catalogue(REPO).get(assignment_id)
    notebook = build_notebook((REPO / assignment.handout).read_text(), assignment_id, "x.md")
    parts, current = {}, None
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    current = line if line.startswith("## Part") else None
                    if current:
                        parts.setdefault(current, 0)
        elif current:
            parts[current] += 1
    assert parts, f"{assignment_id}: no '## Part' heading in its handout"
    assert all(parts.values()), (
        f"{assignment_id}: parts without a check: {[p for p, n in parts.items() if not n]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", READY)
def test_the_notebook_runs_top_to_bottom_on_the_reference(assignment_id, tmp_path):
    path = tmp_path / f"{assignment_id}.ipynb"
    path.write_text(notebook_text(REPO, load_catalogue(REPO).get(assignment_id)))
    run = run_notebook(path, REPO, tmp_path)
    if run.error is not None:
        where = cell_heading(run.notebook, run.failed_cell)
        pytest.fail(f"{assignment_id}: cell {run.failed_cell} under {where!r} failed:\n{run.error}")
    assert list(tmp_path.iterdir()) == [path], "a check left files in the notebook's folder"


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", READY)
def test_on_a_fresh_release_the_notebook_stops_at_the_first_part(assignment_id, releases):
    released = releases(assignment_id)
    assignment = load_catalogue(released).get(assignment_id)
    path = released / notebook_file(assignment)
    assert path.read_text() == notebook_text(released, assignment)  # made from its handout
    run = run_notebook(path, released, path.parent)
    assert run.error is not None, f"{assignment_id}: every cell ran on the starter"
    expected = first_part_cell(run.notebook)
    assert run.failed_cell == expected, (
        f"{assignment_id}: stopped at cell {run.failed_cell} "
        f"({cell_heading(run.notebook, run.failed_cell)!r}), expected the first part's first "
        f"check, cell {expected}:\n{run.error}"
    )
    error = run.notebook.cells[run.failed_cell].outputs[-1]
    assert error["ename"] == "NotImplementedError"
    first, where = error["traceback"][:2]
    assert first.startswith(f"not implemented yet: {assignment_id}: "), first
    match = re.search(r"Write it in (\S+), line \d+", where)
    assert match and Path(match.group(1)).is_relative_to(released / "src"), where
    assert Path(match.group(1)).relative_to(released).as_posix() in assignment.sources, where


def test_dlcc_course_notebook_writes_one_per_assignment_and_refuses_an_unknown_one(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlcc",
            "course",
            "notebook",
            "a1",
            "a9",
            "--out",
            str(tmp_path / "nb"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no assignment 'a9'" in result.stderr, result.stderr
    assert not (tmp_path / "nb").exists(), "nothing is written when one id is unknown"


# ---- the README's commands, as written, in a fresh shell ---------------------------------
def readme_notebook_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- readme: notebooks -->\n```bash\n(.*?)```", text, re.S)
    assert block, "README.md: no ```bash block after <!-- readme: notebooks -->"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not (REPO / ".venv/bin/jupyter").exists(), reason="no .venv: run `make install`"
)
def test_the_readme_notebook_commands_work_as_written_in_a_fresh_shell(tmp_path):
    make, open_lab = readme_notebook_commands()
    assert make.startswith(".venv/bin/dlcc course notebook") and open_lab.startswith(
        ".venv/bin/jupyter lab "
    )
    work = tmp_path / "work"  # a folder of its own, so the test writes nothing into the repo
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    port, token = free_port(), "dlcc-test-token"
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "JUPYTER_PORT": str(port),
        "JUPYTER_TOKEN": token,
        "BROWSER": "true",
    }
    if os.getuid() == 0:  # CI runs as root, which Jupyter refuses unless configured to
        config = tmp_path / "jupyter-config"
        config.mkdir()
        (config / "jupyter_server_config.json").write_text('{"ServerApp": {"allow_root": true}}')
        env["JUPYTER_CONFIG_DIR"] = str(config)
    made = subprocess.run(
        ["bash", "-c", make], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    opened = open_lab.split()[-1]
    assert (work / opened).is_file(), made.stdout
    log = tmp_path / "jupyter-lab.log"
    with log.open("w") as output:
        lab = subprocess.Popen(
            ["bash", "-c", open_lab],
            cwd=work,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, params={"token": token}, timeout=10) as client:
            deadline = time.monotonic() + 90
            while True:
                try:
                    # JupyterLab opened on a file serves the file's folder
                    answer = client.get(f"/api/contents/{Path(opened).name}")
                    break
                except httpx.TransportError:
                    assert lab.poll() is None and time.monotonic() < deadline, (
                        "JupyterLab did not start"
                    )
                    time.sleep(0.5)
            assert answer.status_code == 200 and answer.json()["type"] == "notebook"
            assert answer.json()["content"]["metadata"]["dlcc"]["assignment"] == "a1"
            assert client.get("/lab").status_code == 200
            session = client.post(
                "/api/sessions",
                json={"path": Path(opened).name, "type": "notebook", "kernel": {"name": "python3"}},
            )
            assert session.status_code == 201, session.text
            assert client.delete(f"/api/sessions/{session.json()['id']}").status_code == 204
    except AssertionError as error:
        raise AssertionError(f"{error}\nJupyterLab's log:\n{log.read_text()[-3000:]}") from None
    finally:
        stop_process(lab)
