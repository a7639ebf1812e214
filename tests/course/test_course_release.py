"""Releasing a student starter from the fake course root."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from course_fake_root import make_fake_root, tree_bytes

from dlcc.cli import main
from dlcc.course.catalogue import load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.release import release

# Lines of the fake reference that are solutions: none may appear in a release.
SOLUTION_LINES = [
    "return a + b",
    "return [max(v, 0) for v in values]",
    "return self.factor * x",
    "return sum(values) / len(values)",
    "return width * height",
    'return "the a3 solution"',
]


@pytest.fixture
def root(tmp_path):
    return make_fake_root(tmp_path / "root")


@pytest.fixture
def released(root, tmp_path):
    return release(root, "a1", tmp_path / "release")


def test_release_layout(released):
    files = sorted(tree_bytes(released))
    assert files == [
        "Makefile",
        "README.md",
        "assignments/a1/README.md",
        "assignments/a1/a1.ipynb",
        "assignments/catalogue.toml",
        "pyproject.toml",
        "src/dlcc/__init__.py",
        "src/dlcc/toy/__init__.py",
        "src/dlcc/toy/helpers.py",
        "src/dlcc/toy/later.py",
        "src/dlcc/toy/ops.py",
        "src/dlcc/toy/shapes.py",
        "tests/course/a1/conftest.py",
        "tests/course/a1/test_toy_ops.py",
        "tests/course/a1/test_toy_shapes.py",
        "tests/course/a1/toy_helpers.py",
    ]


def test_no_solution_of_any_assignment_leaks(released):
    text = "\n".join(data.decode() for data in tree_bytes(released).values())
    for line in SOLUTION_LINES:
        assert line not in text
    assert "BEGIN SOLUTION" not in text and "END PROMPT" not in text
    ops = (released / "src/dlcc/toy/ops.py").read_text()
    assert (
        "    # Hint: a list comprehension does it in one line.\n"
        '    raise NotImplementedError("a1: relu: max(v, 0) for each value")\n'
    ) in ops
    later = (released / "src/dlcc/toy/later.py").read_text()
    assert 'raise NotImplementedError("a3: implement secret")' in later


def test_hidden_tests_are_removed(released, root):
    catalogue = load_catalogue(released)
    assert list(catalogue.assignments) == ["a1"]
    a1 = catalogue.get("a1")
    assert {t.visibility for t in a1.tests} == {"public"}
    assert len(a1.tests) == 12 and a1.points("public") == 14
    ops_tests = (released / "tests/course/a1/test_toy_ops.py").read_text()
    assert "test_relu_more_cases" not in ops_tests
    assert "def test_relu():" in ops_tests and "def test_mean():" in ops_tests
    assert "\n\n\n\n" not in ops_tests
    assert not (released / "tests/course/a1/test_toy_hidden.py").exists()
    # Non-test files travel unchanged.
    for name in ("conftest.py", "toy_helpers.py", "test_toy_shapes.py"):
        relative = f"tests/course/a1/{name}"
        assert (released / relative).read_bytes() == (root / relative).read_bytes()


def test_readme_says_what_to_edit_and_how_to_grade(released):
    readme = (released / "README.md").read_text()
    assert "- `src/dlcc/toy/ops.py`" in readme and "- `src/dlcc/toy/shapes.py`" in readme
    assert "dlcc course grade a1 --submission ." in readme
    assert "--json results.json" in readme
    assert "Total: 14/14 (100.0%)" in readme
    assert "6 points of hidden tests" in readme
    assert '.venv/bin/pip install -e "."' in readme  # the fake pyproject declares no extras


def test_readme_installs_the_courses_test_extras(root, tmp_path):
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + '[project.optional-dependencies]\ndev = ["pytest"]\ntorch = ["torch"]\nbench = []\n'
    )
    readme = (release(root, "a1", tmp_path / "extras") / "README.md").read_text()
    assert '.venv/bin/pip install -e ".[dev,torch]"' in readme
    pinned = (tmp_path / "extras" / "pyproject.toml").read_text()
    assert 'torch = ["torch==2.13.0"]' in pinned  # no Makefile in this root: the default pin


def test_two_releases_are_byte_identical(root, tmp_path, released):
    again = release(root, "a1", tmp_path / "again")
    assert tree_bytes(again) == tree_bytes(released)


def test_release_imports_and_stubs_raise_the_assignment_message(released):
    script = textwrap.dedent(
        """
        import dlcc.toy.ops as ops, dlcc.toy.later as later, dlcc.toy.helpers as helpers
        assert ops.__file__.startswith(RELEASE), ops.__file__
        helpers.check_number(1)
        for call, message in [
            (lambda: ops.add(1, 2), "a1: implement add"),
            (lambda: ops.Scale(2).forward(1), "a1: implement Scale.forward"),
            (lambda: later.secret(), "a3: implement secret"),
        ]:
            try:
                call()
            except NotImplementedError as error:
                assert str(error) == message, str(error)
            else:
                raise AssertionError("no NotImplementedError")
        print("ok")
        """
    ).replace("RELEASE", repr(str(released)))
    environment = {**os.environ, "PYTHONPATH": str(released / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=released,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_refuses_a_non_empty_folder_unless_forced(root, released):
    (released / "mine.txt").write_text("learner work")
    with pytest.raises(CourseError, match="is not empty; choose a new folder, or pass --force"):
        release(root, "a1", released)
    release(root, "a1", released, force=True)
    assert not (released / "mine.txt").exists()
    assert (released / "src/dlcc/toy/ops.py").exists()
    assert [p.name for p in released.parent.iterdir() if p.name.startswith(".")] == []


def test_failure_leaves_no_half_written_release(root, tmp_path):
    ops = root / "src/dlcc/toy/ops.py"
    ops.write_text(ops.read_text().replace("    # END SOLUTION\n", "", 1))
    out = tmp_path / "broken"
    with pytest.raises(CourseError, match=r"src/dlcc/toy/ops.py:\d+: "):
        release(root, "a1", out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_unlisted_fenced_file_is_refused(root, tmp_path):
    (root / "src/dlcc/toy/stray.py").write_text(
        "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n"
    )
    with pytest.raises(CourseError, match=r"stray\.py has solution regions but no assignment"):
        release(root, "a1", tmp_path / "out")


def test_planned_and_overlapping_out_are_refused(root, tmp_path):
    with pytest.raises(CourseError, match="a2 is planned"):
        release(root, "a2", tmp_path / "out")
    with pytest.raises(CourseError, match="overlaps the course root"):
        release(root, "a1", root / "release")


def test_release_command(root, tmp_path, capsys):
    out = tmp_path / "cli-release"
    assert main(["course", "release", "a1", "--root", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"released a1 (Toy operations) to {out}" in printed
    assert "public tests: 12 (14 points)" in printed
    assert main(["course", "release", "a1", "--root", str(root), "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_a_release_ships_the_recipes_so_dlcc_train_finds_them(tmp_path):
    """`dlcc train NAME` looks in recipes/ beside src/: the starter needs its own copy."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "recipes").is_dir():
        pytest.skip("no recipes/ folder in this checkout")
    out = tmp_path / "a2"
    release(root, "a2", out)
    shipped = sorted(path.name for path in (out / "recipes").glob("*.yaml"))
    assert shipped == sorted(path.name for path in (root / "recipes").glob("*.yaml"))


REPO = Path(__file__).resolve().parents[2]
IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, pkgutil
    import dlcc
    assert dlcc.__file__.startswith(RELEASE), dlcc.__file__
    for module in pkgutil.walk_packages(dlcc.__path__, "dlcc."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(module.name)
    from dlcc.errors import DlccError
    from dlcc.numpy_trainer.settings import resolve_settings
    assert resolve_settings("mlp", "digits", {})["schedule"] == "cosine"
    try:
        resolve_settings("mlp", "digits", {"schedule": "onecycle"})
    except DlccError as error:
        assert "use --schedule cosine" in str(error), error
    else:
        raise AssertionError("onecycle accepted without its formula")
    print("ok")
    """
)


def withheld_helpers(root: Path) -> list[tuple[str, str, str, set[str]]]:
    """(withholding assignment, path, name, the body's own lines) of every withheld helper of
    `root`'s catalogue. A body's own lines are its code lines (after the docstring) that the
    file has nowhere outside the withheld functions: each is part of the answer."""
    helpers = []
    for assignment in load_catalogue(root).assignments.values():
        for item in assignment.withheld:
            path, _, name = item.partition("::")
            helpers.append((assignment.id, path, name))
    found = []
    for owner, path, name in helpers:
        text = (root / path).read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        withheld = {n for _, p, n in helpers if p == path}
        bodies: dict[str, set[int]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in withheld:
                code = node.body[1:] if ast.get_docstring(node) else node.body
                bodies[node.name] = set(range(code[0].lineno, node.end_lineno + 1))
        inside = set().union(*bodies.values())
        outside = {lines[i - 1].strip() for i in range(1, len(lines) + 1) if i not in inside}
        own = {lines[i - 1].strip() for i in bodies[name]} - outside
        own = {line for line in own if line and not line.startswith("#") and len(line) > 8}
        found.append((owner, path, name, own))
    return found


def test_no_release_gives_away_a_withheld_helper_and_each_still_imports(releases):
    """A helper one assignment withholds answers it in every other release too (an earlier
    release stays with its learners), so every ready assignment's release stubs all of them."""
    helpers = withheld_helpers(REPO)
    assert {(owner, name) for owner, _, name, _ in helpers} >= {("a2", "onecycle_lr")}
    assert all(own for *_, own in helpers)  # each has lines worth checking for
    ready = [a.id for a in load_catalogue(REPO).assignments.values() if not a.planned]
    assert ready
    for assignment_id in ready:
        released = releases(assignment_id)
        for owner, path, name, own in helpers:
            text = (released / path).read_text()
            leaked = sorted(line for line in own if line in text)
            assert leaked == [], (assignment_id, name, leaked)
            stub = f'raise NotImplementedError("{owner}: {name} is left out of this release'
            assert stub in text, (assignment_id, name)
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_EVERY_MODULE.replace("RELEASE", repr(str(released)))],
            env={**os.environ, "PYTHONPATH": str(released / "src")},
            cwd=released,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (assignment_id, result.stderr[-2000:])
        assert result.stdout.strip() == "ok"


def test_the_instructors_numpy_trainer_keeps_onecycle_as_its_default():
    from dlcc.numpy_trainer.settings import onecycle_withheld, resolve_settings

    assert not onecycle_withheld()
    assert resolve_settings("mlp", "digits", {})["schedule"] == "onecycle"


def test_withheld_by_file_gives_a_helper_to_the_first_assignment_that_withholds_it():
    from dlcc.course.catalogue import Assignment
    from dlcc.course.withhold import withheld_by_file

    first = Assignment("a1", "A", "a1.md", withheld=("src/dlcc/x.py::f", "src/dlcc/y.py::g"))
    second = Assignment("a2", "B", "a2.md", withheld=("src/dlcc/x.py::f", "src/dlcc/x.py::h"))
    assert withheld_by_file([first, second]) == {
        "src/dlcc/x.py": {"f": "a1", "h": "a2"},
        "src/dlcc/y.py": {"g": "a1"},
    }
