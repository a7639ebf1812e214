"""``dlcc course release aN --out DIR``: the learner's starter, made from the reference.

The release is a self-contained folder a learner installs with ``pip install -e DIR``::

    DIR/README.md                      generated: what to edit, how to grade, what passing is
    DIR/pyproject.toml                 the course root's, unchanged
    DIR/src/dlcc/...                   the whole package, with every solution region of every
                                       catalogued source stubbed (no assignment's solution leaks)
    DIR/assignments/catalogue.toml     this assignment only, hidden tests removed
    DIR/assignments/aN/README.md       the handout
    DIR/tests/course/aN/...            the public tests, plus conftest.py and helper modules

It is built in a temporary sibling folder and renamed into place, so a failure leaves no
half-written release; the same inputs give byte-identical files.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from dlcc.course.catalogue import (
    CATALOGUE_PATH,
    PACKAGE_SOURCE,
    Assignment,
    Catalogue,
    format_points,
    load_catalogue,
    render_catalogue,
    tomllib,
)
from dlcc.course.errors import CourseError
from dlcc.course.fences import has_fences, parse_regions, split_lines, strip_solutions
from dlcc.suggest import did_you_mean

SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".part")
TEST_FILE = re.compile(r"(test_.*|.*_test)\.py")


def walk_files(folder: Path) -> list[Path]:
    """Every file under `folder`, relative to it, sorted; caches and temporaries skipped."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_NAMES)
        for name in sorted(files):
            if name in SKIPPED_NAMES or name.endswith(SKIPPED_SUFFIXES):
                continue
            found.append((Path(directory) / name).relative_to(folder))
    return sorted(found, key=lambda path: path.as_posix())


def stubbed_source(catalogue: Catalogue, relative: str, text: str) -> str:
    """`text` of the package file `relative` (root-relative, e.g. "src/dlcc/x.py") as released:
    regions stubbed with the owning assignment's id. A file no assignment owns must have no
    regions (they would leak)."""
    owner = catalogue.source_owners().get(relative)
    if owner is not None:
        return strip_solutions(text, relative, owner)
    if has_fences(text) and parse_regions(text, relative):
        raise CourseError(
            f"{relative} has solution regions but no assignment lists it in its sources; add "
            f"it to the sources of its assignment in {CATALOGUE_PATH.as_posix()}"
        )
    return text


def region_names(root: Path, assignment: Assignment) -> set[str]:
    """The functions holding solution regions in `assignment`'s sources ("Linear.forward")."""
    names = set()
    for source in assignment.sources:
        text = (root / source).read_text(encoding="utf-8")
        names.update(region.function for region in parse_regions(text, source))
    return names


def check_regions(root: Path, assignment: Assignment) -> None:
    """Each test's optional ``regions`` must name functions that hold solution regions in the
    assignment's sources. Skipped where the sources hold no regions at all (a release)."""
    known = region_names(root, assignment)
    if not known:
        return
    for index, test in enumerate(assignment.tests):
        for name in test.regions or ():
            if name not in known:
                hint = did_you_mean(name, sorted(known))
                raise CourseError(
                    f"{CATALOGUE_PATH.as_posix()}: [{assignment.id}] tests[{index}] "
                    f"({test.test}): regions names {name!r}, which holds no solution region in "
                    f"{assignment.id}'s sources{hint}"
                )


def copy_package(catalogue: Catalogue, destination: Path, *, stub: bool) -> None:
    """Copy ``root/src/dlcc`` to `destination` (a ``.../src/dlcc`` folder); with `stub`, every
    catalogued source gets its release stubs."""
    source_root = catalogue.root / PACKAGE_SOURCE
    for relative in walk_files(source_root):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if stub and relative.suffix == ".py":
            root_relative = (PACKAGE_SOURCE / relative).as_posix()
            data = (source_root / relative).read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise CourseError(f"{root_relative}: not UTF-8 text") from None
            target.write_bytes(stubbed_source(catalogue, root_relative, text).encode("utf-8"))
        else:
            shutil.copyfile(source_root / relative, target)


def hidden_functions(assignment: Assignment) -> dict[str, set[str]]:
    """For each test file (tests_dir-relative), the test functions ("Class::name" or "name")
    whose every catalogued case is hidden. A function with both public and hidden cases
    cannot be split by the release: that is an error."""
    visibilities: dict[tuple[str, str], set[str]] = defaultdict(set)
    for test in assignment.tests:
        visibilities[(test.file, test.qualified_function)].add(test.visibility)
    hidden: dict[str, set[str]] = defaultdict(set)
    for (file, function), kinds in sorted(visibilities.items()):
        if kinds == {"public", "hidden"}:
            raise CourseError(
                f"{assignment.tests_dir}/{file}::{function} has both public and hidden cases; "
                "the release removes hidden tests by function, so split it into two functions"
            )
        if kinds == {"hidden"}:
            hidden[file].add(function)
    return hidden


def remove_functions(text: str, filename: str, functions: set[str]) -> str:
    """`text` without the named test functions ("name" or "Class::name"), decorators included."""
    tree = ast.parse(text, filename)
    spans = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in functions:
            spans.append(_span(node))
        elif isinstance(node, ast.ClassDef):
            methods = [
                child
                for child in node.body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                and f"{node.name}::{child.name}" in functions
            ]
            if methods and len(methods) == len(node.body):
                spans.append(_span(node))
            else:
                spans.extend(_span(method) for method in methods)
    lines = split_lines(text)
    removed = set()
    for first, last in spans:
        removed.update(range(first, last + 1))
        while last < len(lines) and not lines[last].strip():  # and the blank lines after it
            last += 1
            removed.add(last)
    result = "".join(line for number, line in enumerate(lines, 1) if number not in removed)
    try:
        compile(result, filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise CourseError(
            f"{filename}:{error.lineno}: removing the hidden tests leaves code that does not "
            f"compile ({error.msg}); put hidden tests in their own functions or file"
        ) from None
    return result


def _span(node: ast.AST) -> tuple[int, int]:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first, node.end_lineno or node.lineno


def copy_public_tests(root: Path, assignment: Assignment, destination: Path) -> list[str]:
    """Copy the assignment's tests_dir to `destination` without its hidden tests: a file whose
    catalogued tests are all hidden is left out, a mixed file loses its hidden functions.
    Returns the files written (tests_dir-relative)."""
    source = root / assignment.tests_dir
    hidden = hidden_functions(assignment)
    public_files = {test.file for test in assignment.tests if test.visibility == "public"}
    written = []
    for relative in walk_files(source):
        name = relative.as_posix()
        data = (source / relative).read_bytes()
        if name in hidden:
            if name not in public_files:
                continue  # every graded test in it is hidden
            text = data.decode("utf-8")
            data = remove_functions(text, f"{assignment.tests_dir}/{name}", hidden[name]).encode(
                "utf-8"
            )
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(name)
    return written


def install_extras(pyproject: Path) -> str:
    """``[dev,torch]``: the extras of the course's pyproject a learner installs (the test tools
    and the test oracles), or "" when it declares neither."""
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CourseError(f"{pyproject}: cannot read it: {error}") from None
    declared = project.get("optional-dependencies", {})
    extras = [name for name in ("dev", "torch") if name in declared]
    return f"[{','.join(extras)}]" if extras else ""


def render_readme(assignment: Assignment, extras: str = "") -> str:
    """The release's README.md: what to edit, how to grade, what passing looks like."""
    public = assignment.points("public")
    hidden = assignment.points("hidden")
    sources = "\n".join(f"- `{source}`" for source in assignment.sources)
    names = ", ".join(Path(source).name for source in assignment.sources)
    hidden_text = (
        f" The {format_points(hidden)} points of hidden tests are graded after you submit; they "
        "check the same code on other cases, so make your code right, not just the public "
        "tests pass."
        if hidden
        else ""
    )
    return f"""# {assignment.id}: {assignment.title}

Your starter code for {assignment.id}. Read the handout first:
[{assignment.handout}]({assignment.handout}).

This folder is a copy of the course package, `dlcc`, in which the code you are to write has
been replaced by stubs: `raise NotImplementedError("{assignment.id}: ...")`, often with a hint in
a comment just above it.

## Set up

    python -m venv .venv
    .venv/bin/pip install -e ".{extras}"

(or, with NumPy and pytest already installed, `export PYTHONPATH=$PWD/src`).

## What to edit

{sources}

Replace each `raise NotImplementedError("{assignment.id}: ...")` with your code. Leave the other
files alone: the grader uses its own copy of every file not listed here.

## Check your work

    dlcc course grade {assignment.id} --submission .
    dlcc course grade {assignment.id} --submission . --json results.json

The grader prints one line per test: its part, its name, the points earned out of the points
possible, and a one-line feedback (the failing check, or where your code raised). Subtotals
per part and the total follow. `--json` also writes the results in Gradescope's format. You
can also run the public tests directly: `python -m pytest {assignment.tests_dir}`.

## What passing looks like

Every line says `passed` and the last line reads
`Total: {format_points(public)}/{format_points(public)} (100.0%)`. An unimplemented stub shows
as `not implemented yet: {assignment.id}: ...`; a time-out or a crash is charged to the one
test it happened in, and the others still run.{hidden_text}

## Submit

Upload the files you edited ({names}). Their folder layout does not matter.
"""


def release(root: Path, assignment_id: str, out: Path, *, force: bool = False) -> Path:
    """Write the student starter of `assignment_id` to `out` (see the module docstring).

    Refuses a non-empty `out` unless `force`; returns the resolved `out`."""
    catalogue = load_catalogue(root)
    assignment = catalogue.ready(assignment_id)
    check_regions(catalogue.root, assignment)
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise CourseError(f"--out {out} is a file; give a folder (it will be created)")
    if out.exists() and any(out.iterdir()) and not force:
        raise CourseError(
            f"--out {out} is not empty; choose a new folder, or pass --force to replace it"
        )
    if catalogue.root == out or catalogue.root in out.parents or out in catalogue.root.parents:
        raise CourseError(
            f"--out {out} overlaps the course root {catalogue.root}; choose a folder outside it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        _build(catalogue, assignment, building)
        _replace(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out


def _build(catalogue: Catalogue, assignment: Assignment, folder: Path) -> None:
    root = catalogue.root
    copy_package(catalogue, folder / PACKAGE_SOURCE, stub=True)
    shutil.copyfile(root / "pyproject.toml", folder / "pyproject.toml")
    if (root / "recipes").is_dir():  # `dlcc train NAME` looks for recipes beside src/
        for recipe in sorted((root / "recipes").glob("*.yaml")):
            (folder / "recipes").mkdir(exist_ok=True)
            shutil.copyfile(recipe, folder / "recipes" / recipe.name)
    handout = folder / assignment.handout
    handout.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / assignment.handout, handout)
    copy_public_tests(root, assignment, folder / assignment.tests_dir)
    public = Assignment(
        **{
            **assignment.__dict__,
            "tests": tuple(t for t in assignment.tests if t.visibility == "public"),
        }
    )
    header = (
        f"Generated by `dlcc course release {assignment.id}`: this assignment and its public "
        "tests only."
    )
    catalogue_file = folder / CATALOGUE_PATH
    catalogue_file.parent.mkdir(parents=True, exist_ok=True)
    catalogue_file.write_text(render_catalogue([public], header), encoding="utf-8")
    extras = install_extras(root / "pyproject.toml")
    (folder / "README.md").write_text(render_readme(assignment, extras), encoding="utf-8")
    load_catalogue(folder)  # the release must be a valid course root on its own


def _replace(building: Path, out: Path) -> None:
    """Move the finished release onto `out`, replacing an old one only once the new is done."""
    os.chmod(building, 0o755)  # mkdtemp makes it private; a release is not a secret
    if not out.exists():
        os.rename(building, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(building, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
