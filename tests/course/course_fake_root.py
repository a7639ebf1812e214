"""A tiny fake course root for the course-mechanism tests.

Its package is also called ``dlcc`` (the grader takes ``root/src/dlcc``), so it is only ever
imported in subprocesses, never by the test process itself. Layout::

    pyproject.toml
    assignments/catalogue.toml       a1 (ready: ops.py + shapes.py), a2 (planned), a3 (ready)
    assignments/a1/README.md, a2/README.md, a3/README.md
    src/dlcc/__init__.py
    src/dlcc/toy/ops.py              a1 source: eleven small fenced functions
    src/dlcc/toy/shapes.py           a1 source: area()
    src/dlcc/toy/helpers.py          not a source (no fences)
    src/dlcc/toy/later.py            a3 source
    tests/course/a1/                 conftest.py, toy_helpers.py, test_toy_ops.py (public and one
                                     hidden function), test_toy_shapes.py, test_toy_hidden.py
    tests/course/a3/test_toy_later.py
"""

from __future__ import annotations

import textwrap
from pathlib import Path

OPS = '''\
"""Toy operations: the reference solution of the fake assignment a1."""

from dlcc.toy.helpers import check_number


def add(a, b):
    """a + b."""
    # BEGIN SOLUTION
    return a + b
    # END SOLUTION


def relu(values):
    """max(v, 0) for each value."""
    # BEGIN SOLUTION relu: max(v, 0) for each value
    return [max(v, 0) for v in values]
    # END SOLUTION
    # BEGIN PROMPT
    # Hint: a list comprehension does it in one line.
    # END PROMPT


class Scale:
    """Multiply by a fixed factor."""

    def __init__(self, factor):
        self.factor = factor

    def forward(self, x):
        # BEGIN SOLUTION
        return self.factor * x
        # END SOLUTION


def mean(values):
    # BEGIN SOLUTION
    return sum(values) / len(values)
    # END SOLUTION


def square(x):
    # BEGIN SOLUTION
    return x * x
    # END SOLUTION


def negate(x):
    # BEGIN SOLUTION
    return -x
    # END SOLUTION


def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION


def clip(x, low, high):
    check_number(x)
    # BEGIN SOLUTION
    return min(max(x, low), high)
    # END SOLUTION


def halve(x):
    # BEGIN SOLUTION
    return x / 2
    # END SOLUTION


def total(values):
    # BEGIN SOLUTION
    return sum(values)
    # END SOLUTION


def cube(x):
    # BEGIN SOLUTION
    return x**3
    # END SOLUTION
'''

SHAPES = '''\
"""Toy shapes: the second source of a1."""


def area(width, height):
    # BEGIN SOLUTION area = width * height
    return width * height
    # END SOLUTION
'''

HELPERS = '''\
"""Not a source: the grader always uses the reference copy of this file."""


def check_number(x):
    if not isinstance(x, int | float):
        raise TypeError(f"expected a number, got {type(x).__name__}")
'''

LATER = '''\
"""The reference of a later assignment (a3): must never leak into a1's release."""


def secret():
    # BEGIN SOLUTION
    return "the a3 solution"
    # END SOLUTION
'''

TEST_OPS = '''\
"""Graded tests of the fake a1."""

from toy_helpers import expect

from dlcc.toy import ops


def test_add():
    expect(ops.add(2, 3), 5, "add(2, 3)")


def test_relu():
    expect(ops.relu([-1, 2]), [0, 2], "relu([-1, 2])")


def test_scale(numbers):
    expect(ops.Scale(2).forward(numbers[0]), 2, "Scale(2).forward(1)")


def test_relu_more_cases():
    expect(ops.relu([-5, 0, 5]), [0, 0, 5], "relu([-5, 0, 5])")


def test_mean():
    expect(ops.mean([1, 2, 3]), 2, "mean([1, 2, 3])")


def test_square():
    expect(ops.square(3), 9, "square(3)")


def test_negate():
    expect(ops.negate(3), -3, "negate(3)")


def test_double():
    expect(ops.double(3), 6, "double(3)")


def test_clip():
    expect(ops.clip(5, 0, 3), 3, "clip(5, 0, 3)")


def test_halve():
    expect(ops.halve(4), 2, "halve(4)")


def test_total():
    expect(ops.total([1, 2]), 3, "total([1, 2])")


def test_cube():
    expect(ops.cube(2), 8, "cube(2)")
'''

TEST_SHAPES = """\
from dlcc.toy.shapes import area


def test_area():
    assert area(2, 3) == 6, f"area(2, 3) should be 6, got {area(2, 3)}"
"""

TEST_HIDDEN = """\
from dlcc.toy import ops


def test_add_large():
    assert ops.add(10**6, 1) == 10**6 + 1, "add of large numbers is wrong"
"""

CONFTEST = """\
import pytest


@pytest.fixture
def numbers():
    return [1, 2, 3]
"""

TOY_HELPERS = """\
def expect(got, wanted, what):
    assert got == wanted, f"{what} should be {wanted!r}, got {got!r}"
"""

TEST_LATER = """\
from dlcc.toy.later import secret


def test_secret():
    assert secret() == "the a3 solution"
"""

OPS_TESTS = [
    "test_add",
    "test_relu",
    "test_scale",
    "test_mean",
    "test_square",
    "test_negate",
    "test_double",
    "test_clip",
    "test_halve",
    "test_total",
    "test_cube",
]


def catalogue_text(extra_a1: str = "") -> str:
    entries = []
    for name in OPS_TESTS:
        timeout = "timeout_s = 1.5\n" if name == "test_relu" else ""
        part = "Part 1: basics" if name in ("test_add", "test_relu", "test_scale") else "Part 2"
        entries.append(
            f'[[a1.tests]]\ntest = "test_toy_ops.py::{name}"\npoints = 1\n'
            f'visibility = "public"\npart = "{part}"\n{timeout}'
        )
    entries.append(
        '[[a1.tests]]\ntest = "test_toy_ops.py::test_relu_more_cases"\npoints = 2\n'
        'visibility = "hidden"\npart = "Part 1: basics"\n'
    )
    entries.append(
        '[[a1.tests]]\ntest = "test_toy_shapes.py::test_area"\npoints = 3\n'
        'visibility = "public"\npart = "Part 3: shapes"\n'
    )
    entries.append(
        '[[a1.tests]]\ntest = "test_toy_hidden.py::test_add_large"\npoints = 4\n'
        'visibility = "hidden"\npart = "Part 1: basics"\n'
    )
    return (
        textwrap.dedent(
            """\
            [a1]
            title = "Toy operations"
            handout = "assignments/a1/README.md"
            sources = ["src/dlcc/toy/ops.py", "src/dlcc/toy/shapes.py"]
            tests_dir = "tests/course/a1"
            timeout_s = 3
            memory_mb = 2048

            """
        )
        + "\n".join(entries)
        + extra_a1
        + textwrap.dedent(
            """
            [a2]
            title = "Planned work"
            handout = "assignments/a2/README.md"
            status = "planned"

            [a3]
            title = "Later"
            handout = "assignments/a3/README.md"
            sources = ["src/dlcc/toy/later.py"]
            tests_dir = "tests/course/a3"

            [[a3.tests]]
            test = "test_toy_later.py::test_secret"
            points = 1
            visibility = "public"
            """
        )
    )


FILES = {
    "pyproject.toml": '[project]\nname = "fake-course"\nversion = "0.0.1"\n',
    "assignments/a1/README.md": "# a1: toy operations\n",
    "assignments/a2/README.md": "# a2: planned\n",
    "assignments/a3/README.md": "# a3: later\n",
    "src/dlcc/__init__.py": '"""A fake dlcc package for the course tests."""\n',
    "src/dlcc/toy/__init__.py": "",
    "src/dlcc/toy/ops.py": OPS,
    "src/dlcc/toy/shapes.py": SHAPES,
    "src/dlcc/toy/helpers.py": HELPERS,
    "src/dlcc/toy/later.py": LATER,
    "tests/course/a1/conftest.py": CONFTEST,
    "tests/course/a1/toy_helpers.py": TOY_HELPERS,
    "tests/course/a1/test_toy_ops.py": TEST_OPS,
    "tests/course/a1/test_toy_shapes.py": TEST_SHAPES,
    "tests/course/a1/test_toy_hidden.py": TEST_HIDDEN,
    "tests/course/a3/test_toy_later.py": TEST_LATER,
}


def make_fake_root(folder: Path, catalogue: str | None = None) -> Path:
    """Write the fake course root into `folder` and return it."""
    for relative, text in FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "assignments" / "catalogue.toml").write_text(
        catalogue if catalogue is not None else catalogue_text(), encoding="utf-8"
    )
    return folder


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (caches skipped) -> its bytes: to compare two trees."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
