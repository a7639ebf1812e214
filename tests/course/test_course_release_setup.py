"""The learner's set-up in a release (`dlcc.course.release_setup`, `dlcc.course.withhold`).

- one install command (`make install`) that pins the torch the course's Makefile pins;
- every command of the README and the handout works as written in a fresh shell (slow: a
  clean virtualenv that sees this machine's packages);
- no release mentions a path or a make target it does not contain;
- the handouts' sample tables are what the release prints; ``--hidden`` is refused;
- no visible helper computes a graded region's answer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from release_text import missing_mentions

import dlcc
from dlcc.course.catalogue import load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.grade import grade
from dlcc.course.outcome import SourceOrigin, SourceStatus, Status, TestOutcome
from dlcc.course.release_setup import learner_blocks, torch_install
from dlcc.course.report import GradeReport, TestResult

REPO = Path(dlcc.__file__).resolve().parents[2]
ASSIGNMENTS = ["a1", "a2", "a3", "a4", "a5", "a6"]


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_installs_with_make_install_and_pins_the_courses_torch(assignment_id, releases):
    released = releases(assignment_id)
    pin = torch_install(REPO)
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+", pin), pin  # the course Makefile pins a version
    makefile = (released / "Makefile").read_text()
    assert f"TORCH_INSTALL ?= {pin}\n" in makefile
    assert "--index-url" in makefile  # how a GPU user overrides it
    for target in ("install", "grade", "test", "doctor", "notebook", "clean"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    pyproject = (released / "pyproject.toml").read_text()
    assert re.search(rf'^torch = \["{re.escape(pin)}", ', pyproject, re.M)
    readme = (released / "README.md").read_text()
    blocks = learner_blocks(readme)
    assert blocks["setup"].strip() == "make install"
    assert blocks["grade"].strip() == f".venv/bin/dlcc course grade {assignment_id} --submission ."
    notebook = f"assignments/{assignment_id}/{assignment_id}.ipynb"
    assert blocks["notebook"].strip() == f".venv/bin/jupyter lab {notebook}"
    assert (released / notebook).is_file() and f"jupyter lab {notebook}\n" in makefile
    assert re.search(r"^notebook = \[", pyproject, re.M)
    assert '-e ".[dev,torch,notebook]"' in makefile
    handout = learner_blocks((released / f"assignments/{assignment_id}/README.md").read_text())
    assert "make install" in handout["commands"]


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_no_bare_dlcc_or_python_command_in_the_release_text(assignment_id, releases):
    """After `make install` nothing is activated: a command runs `.venv/bin/...` by path."""
    released = releases(assignment_id)
    for name in ("README.md", f"assignments/{assignment_id}/README.md"):
        text = (released / name).read_text()
        code = "\n".join(re.findall(r"```bash\n(.*?)```", text, re.S))
        # inline commands with arguments; "`dlcc doctor`'s report" names a tool
        inline = re.findall(r"`([^`\n]+)`", text)
        code += "\n" + "\n".join(c for c in inline if len(c.split()) >= 3)
        for line in code.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith(("dlcc ", "python ", "pytest", "pip ")):
                # the one command an instructor runs in the course repository
                assert command.startswith(f"dlcc course release {assignment_id} "), (name, line)


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_no_release_mentions_a_file_it_does_not_contain(assignment_id, releases, tmp_path):
    released = releases(assignment_id)
    assert missing_mentions(released) == []
    # ... and the check sees what it is for.
    (released / "tests" / "course" / assignment_id / "extra_note.md").write_text(
        "Run `make bench`, then read recipes/nope.yaml.\n"
    )
    try:
        assert missing_mentions(released) == [
            f"tests/course/{assignment_id}/extra_note.md: make bench",
            f"tests/course/{assignment_id}/extra_note.md: recipes/nope.yaml",
        ]
    finally:
        (released / "tests" / "course" / assignment_id / "extra_note.md").unlink()


def passed_table(root: Path, assignment_id: str) -> str:
    """The table a release prints when every public test passes (no grading needed)."""
    assignment = load_catalogue(root).get(assignment_id)
    return GradeReport(
        assignment=assignment,
        root=root,
        submission=root,
        hidden=False,
        sources=[SourceOrigin(s, SourceStatus.SUBMITTED) for s in assignment.sources],
        results=[TestResult(t, TestOutcome(Status.PASSED, "passed")) for t in assignment.tests],
        isolation=SimpleNamespace(level="full", note="-"),
        execution_time=0.0,
    ).table()


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_handout_sample_of_a_finished_assignment_is_what_the_release_prints(
    assignment_id, releases
):
    released = releases(assignment_id)
    handout = (released / f"assignments/{assignment_id}/README.md").read_text()
    samples = re.findall(r"```text\n(.*?)```", handout, re.S)
    finished = next(s for s in samples if "Total: " in s)
    table = passed_table(released, assignment_id)
    assert finished in table
    assert table.rstrip().endswith(finished.rstrip().splitlines()[-1])
    public = load_catalogue(released).get(assignment_id).points("public")
    assert f"scores 0/{public:g}," in handout


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_hidden_in_a_release_is_refused_in_one_line(assignment_id, releases):
    with pytest.raises(CourseError) as error:
        grade(releases(assignment_id), assignment_id, hidden=True)
    assert str(error.value) == (
        "this is a release: hidden tests are not included; --hidden grades only on the "
        "instructor's copy"
    )


def run_in(released: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(released / "src")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=released, env=env, capture_output=True, text=True
    )


def test_a2_release_withholds_the_numpy_onecycle_formula_and_still_imports(releases):
    released = releases("a2")
    result = run_in(
        released,
        "import dlcc.numpy_nn, dlcc.training.schedules, dlcc.training.loop\n"
        "from dlcc.numpy_nn.schedules import onecycle_lr\n"
        "try:\n    onecycle_lr(3, 10, 0.1)\nexcept NotImplementedError as e:\n    print(e)\n",
    )
    assert result.returncode == 0, result.stderr
    assert "a2: onecycle_lr is left out of this release" in result.stdout
    text = (released / "src/dlcc/numpy_nn/schedules.py").read_text()
    # neither the phase boundaries nor the annealing between knots are left to copy
    assert "warmup_end = float(pct_start * total_steps) - 1" not in text
    assert "start, end = knots[i], knots[i + 1]" not in text


def test_a1_release_withholds_a2s_numpy_onecycle_too_and_no_sgd_helper(releases):
    released = releases("a1")
    text = (released / "src/dlcc/numpy_nn/schedules.py").read_text()
    assert "warmup_end = float(pct_start * total_steps) - 1" not in text  # a2's answer
    assert 'raise NotImplementedError("a2: onecycle_lr is left out of this release' in text
    optim = (released / "src/dlcc/numpy_nn/optim.py").read_text()
    sgd = optim[optim.index("class SGD(") : optim.index("class Adam(")]
    assert "buffer *=" not in sgd and "_update_nesterov_or_dampened" not in optim
    assert 'raise NotImplementedError("a1: SGD.step' in sgd


def fresh_shell_env(home: Path) -> dict[str, str]:
    """This environment without any virtualenv: no VIRTUAL_ENV, no PYTHONPATH, and no
    virtualenv's bin folder on PATH (as in a new terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    keep = [
        entry
        for entry in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if entry and not (Path(entry) / "activate").exists() and ".venv" not in entry
    ]
    env["PATH"] = os.pathsep.join(keep)
    env["HOME"] = str(home)
    return env


def commands_of(block: str, *, up_to_first_grade: bool) -> list[str]:
    lines = [line.split(" #")[0].strip() for line in block.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if up_to_first_grade:
        first = next(i for i, line in enumerate(lines) if " course grade " in line)
        lines = lines[: first + 1]
    return lines


@pytest.mark.slow
@pytest.mark.course_integration
def test_the_release_set_up_and_grading_commands_work_as_written_in_a_fresh_shell(
    releases, tmp_path
):
    """`make install` then the first grading command, from the README and from the handout,
    run by bash in a new shell in a clean virtualenv. The virtualenv sees this machine's
    packages (--system-site-packages: no download), and the package is installed into it
    first with --no-deps, so that `make install` finds everything already there."""
    released = releases("a1")
    venv = released / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps", "-e", "."],
        cwd=released,
        check=True,
    )
    readme = learner_blocks((released / "README.md").read_text())
    handout = learner_blocks((released / "assignments/a1/README.md").read_text())
    commands = [
        *commands_of(readme["setup"], up_to_first_grade=False),
        *commands_of(readme["grade"], up_to_first_grade=True),
        *commands_of(handout["commands"], up_to_first_grade=True),
    ]
    assert commands[0] == "make install"
    env = fresh_shell_env(tmp_path)
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=released,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        if " course grade " in command:
            assert "Total: 0/90 (0.0%); hidden tests (10 points) are graded after you submit" in (
                result.stdout
            ), result.stdout[-2000:]
    assert (venv / ".installed").is_file()
