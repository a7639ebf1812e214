"""The catalogue: loading, strict validation with helpful messages, root discovery, rendering."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from course_fake_root import catalogue_text, make_fake_root

import dlcc
from dlcc.cli import main
from dlcc.course.catalogue import CATALOGUE_PATH, find_root, load_catalogue, render_catalogue
from dlcc.course.errors import CourseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def root(tmp_path):
    return make_fake_root(tmp_path / "root")


def test_loads_the_fake_catalogue(root):
    catalogue = load_catalogue(root)
    assert list(catalogue.assignments) == ["a1", "a2", "a3"]
    a1 = catalogue.get("a1")
    assert a1.sources == ("src/dlcc/toy/ops.py", "src/dlcc/toy/shapes.py")
    assert a1.timeout_s == 3 and a1.memory_mb == 2048
    assert a1.points("public") == 14 and a1.points("hidden") == 6
    relu = next(t for t in a1.tests if t.test == "test_toy_ops.py::test_relu")
    assert a1.test_timeout(relu) == 1.5 and relu.part == "Part 1: basics"
    assert len(a1.selected_tests(hidden=False)) == 12
    assert len(a1.selected_tests(hidden=True)) == 14
    assert catalogue.get("a2").planned
    assert catalogue.source_owners()["src/dlcc/toy/later.py"] == "a3"


def test_planned_and_unknown_assignments(root):
    catalogue = load_catalogue(root)
    with pytest.raises(CourseError, match="a2 is planned: its handout is a stub and it has no"):
        catalogue.ready("a2")
    with pytest.raises(CourseError, match=r"no assignment 'a4'.*known assignments: a1, a2, a3"):
        catalogue.get("a4")


def replace_in_catalogue(root, old: str, new: str) -> None:
    path = root / "assignments" / "catalogue.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


BAD_CATALOGUES = [
    (
        "unknown key with a suggestion",
        "timeout_s = 3\n",
        "timeout_sec = 3\n",
        "[a1]: unknown key 'timeout_sec' (did you mean 'timeout_s'?)",
    ),
    (
        "unknown test key",
        'part = "Part 2"\n',
        'prat = "Part 2"\n',
        "unknown key 'prat' (did you mean 'part'?)",
    ),
    (
        "missing field",
        'title = "Toy operations"\n',
        "",
        "[a1]: missing 'title'",
    ),
    (
        "missing visibility",
        'visibility = "public"\npart = "Part 3: shapes"',
        'part = "Part 3: shapes"',
        "(test_toy_shapes.py::test_area): missing 'visibility'",
    ),
    (
        "missing source file",
        '"src/dlcc/toy/shapes.py"]',
        '"src/dlcc/toy/circles.py"]',
        "src/dlcc/toy/circles.py does not exist",
    ),
    (
        "source outside the package",
        '"src/dlcc/toy/shapes.py"]',
        '"assignments/a1/README.md"]',
        "must be a .py file under src/dlcc/",
    ),
    (
        "missing handout",
        'handout = "assignments/a1/README.md"',
        'handout = "assignments/a1/HANDOUT.md"',
        "assignments/a1/HANDOUT.md does not exist",
    ),
    (
        "missing test file",
        'test = "test_toy_shapes.py::test_area"',
        'test = "test_toy_circles.py::test_area"',
        "test file tests/course/a1/test_toy_circles.py does not exist",
    ),
    (
        "test listed twice",
        'test = "test_toy_shapes.py::test_area"',
        'test = "test_toy_ops.py::test_add"',
        "test_toy_ops.py::test_add is listed twice (first as tests[0])",
    ),
    (
        "zero points",
        'points = 3\nvisibility = "public"\npart = "Part 3: shapes"',
        'points = 0\nvisibility = "public"\npart = "Part 3: shapes"',
        "points must be > 0; got 0",
    ),
    (
        "points as a string",
        'points = 3\nvisibility = "public"\npart = "Part 3: shapes"',
        'points = "3"\nvisibility = "public"\npart = "Part 3: shapes"',
        "points must be a number; got '3'",
    ),
    (
        "bad visibility",
        'visibility = "public"\npart = "Part 3: shapes"',
        'visibility = "hiden"\npart = "Part 3: shapes"',
        "visibility must be 'public' or 'hidden'; got 'hiden' (did you mean 'hidden'?)",
    ),
    (
        "test id without a function",
        'test = "test_toy_shapes.py::test_area"',
        'test = "test_toy_shapes.py"',
        "test must be a pytest node id relative to tests_dir",
    ),
    (
        "bad status",
        'status = "planned"',
        'status = "draft"',
        "[a2]: status must be one of ('ready', 'planned'); got 'draft'",
    ),
    (
        "source in two assignments",
        'sources = ["src/dlcc/toy/later.py"]',
        'sources = ["src/dlcc/toy/ops.py"]',
        "src/dlcc/toy/ops.py is a source of both a1 and a3",
    ),
    (
        "not TOML",
        "[a2]\n",
        "[a2\n",
        "not valid TOML",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [case[1:] for case in BAD_CATALOGUES],
    ids=[case[0] for case in BAD_CATALOGUES],
)
def test_bad_catalogues_say_what_is_wrong(root, old, new, message):
    replace_in_catalogue(root, old, new)
    with pytest.raises(CourseError) as error:
        load_catalogue(root)
    assert message in str(error.value)
    assert "assignments/catalogue.toml" in str(error.value)


def test_find_root_explicit_and_missing(root, tmp_path):
    assert find_root(root) == root.resolve()
    with pytest.raises(CourseError, match=r"--root .*expected a course root holding"):
        find_root(tmp_path / "nowhere")


@pytest.fixture
def nowhere(tmp_path):
    """A folder with no catalogue in it or above it (checked, so the tests below are sure)."""
    folder = tmp_path / "nowhere" / "deeper"
    folder.mkdir(parents=True)
    assert not any((d / CATALOGUE_PATH).is_file() for d in [folder, *folder.parents])
    return folder


def place_dlcc(monkeypatch, package: Path) -> None:
    """Make `find_root` believe dlcc was imported from `package`."""
    package.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(dlcc, "__file__", str(package / "__init__.py"))


def test_find_root_default_is_above_the_installed_package(root, nowhere, monkeypatch):
    # An editable install: dlcc in <root>/src/dlcc; the current folder has no catalogue.
    place_dlcc(monkeypatch, root / "src" / "dlcc")
    monkeypatch.chdir(nowhere)
    assert find_root() == root.resolve()


def test_find_root_default_falls_back_to_the_current_folder(root, nowhere, monkeypatch):
    # A site-packages install has no catalogue above it: look above the current folder.
    place_dlcc(monkeypatch, nowhere / "site-packages" / "dlcc")
    monkeypatch.chdir(root / "assignments")
    assert find_root() == root.resolve()


def test_find_root_default_without_a_catalogue_says_what_to_do(nowhere, monkeypatch):
    place_dlcc(monkeypatch, nowhere / "site-packages" / "dlcc")
    monkeypatch.chdir(nowhere)
    with pytest.raises(
        CourseError, match=r"cannot find assignments/catalogue.toml above .*pass --root DIR"
    ):
        find_root()


def test_render_round_trips(root):
    catalogue = load_catalogue(root)
    assignments = list(catalogue.assignments.values())
    text = render_catalogue(assignments, "header line")
    assert text.startswith("# header line\n")
    (root / "assignments" / "catalogue.toml").write_text(text)
    again = load_catalogue(root)
    assert list(again.assignments.values()) == assignments
    assert tomllib.loads(text)["a1"]["tests"][1]["timeout_s"] == 1.5


def test_regions_key_is_optional_and_checked(root):
    extra = (
        '\n[[a1.tests]]\ntest = "test_toy_ops.py::test_total"\npoints = 1\n'
        'visibility = "public"\nregions = ["total"]\n'
    )
    text = catalogue_text().replace(
        '[[a1.tests]]\ntest = "test_toy_ops.py::test_total"\npoints = 1\nvisibility = "public"\n'
        'part = "Part 2"\n',
        "",
    )
    (root / "assignments" / "catalogue.toml").write_text(text.replace("[a2]", extra + "\n[a2]"))
    total = next(t for t in load_catalogue(root).get("a1").tests if t.function == "test_total")
    assert total.regions == ("total",)
    replace_in_catalogue(root, 'regions = ["total"]', "regions = [1]")
    with pytest.raises(CourseError, match="regions must be a list of function names"):
        load_catalogue(root)


def test_list_command(root, capsys):
    assert main(["course", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "a1  ready    14      6       14     Toy operations" in out
    assert "a2  planned" in out


def test_cli_reports_catalogue_errors_in_one_line(root, capsys):
    replace_in_catalogue(root, "timeout_s = 3\n", "timeout_sec = 3\n")
    assert main(["course", "list", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlcc: error: assignments/catalogue.toml: [a1]: unknown key")
    assert err.count("\n") == 1
