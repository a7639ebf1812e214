"""``dlcc course release aN --out DIR``: the learner's starter, made from the reference.

The release is a self-contained folder a learner installs with ``make install`` in it::

    DIR/README.md                      generated: set-up, what to edit, how to grade, passing
    DIR/Makefile                       generated: install (./.venv, torch pinned), grade, test
    DIR/pyproject.toml                 the course root's, with the torch extra pinned
    DIR/src/dlcc/...                   the whole package, with every solution region of every
                                       catalogued source stubbed (no assignment's solution leaks),
                                       and every assignment's withheld helpers stubbed
    DIR/assignments/catalogue.toml     this assignment only, hidden tests removed
    DIR/assignments/aN/README.md       the handout
    DIR/assignments/aN/aN.ipynb        generated: the handout as a notebook (dlcc.course.notebook)
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
    load_catalogue,
    render_catalogue,
)
from dlcc.course.errors import CourseError
from dlcc.course.fences import has_fences, parse_regions, split_lines, strip_solutions
from dlcc.course.notebook import notebook_file, write_notebook
from dlcc.course.release_setup import (
    install_extras,
    pinned_pyproject,
    render_makefile,
    render_readme,
    torch_install,
    torch_pin,
)
from dlcc.course.withhold import withheld_by_file, withhold_functions
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
    """Each test's optional ``regions``, and ``[aN.no_autograd]``'s, must name functions that
    hold solution regions in the assignment's sources. Skipped where the sources hold no
    regions at all (a release)."""
    known = region_names(root, assignment)
    if not known:
        return
    for name in assignment.no_autograd.regions if assignment.no_autograd else ():
        if name not in known:
            raise CourseError(
                f"{CATALOGUE_PATH.as_posix()}: [{assignment.id}.no_autograd] regions names "
                f"{name!r}, which holds no solution region in {assignment.id}'s sources"
                f"{did_you_mean(name, sorted(known))}"
            )
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
    catalogued source gets its release stubs, and every helper that any assignment withholds
    loses its body (`dlcc.course.withhold`: every release, not only the withholding one's)."""
    source_root = catalogue.root / PACKAGE_SOURCE
    withheld = withheld_by_file(catalogue.assignments.values()) if stub else {}
    unknown = sorted(
        set(withheld) - {(PACKAGE_SOURCE / r).as_posix() for r in walk_files(source_root)}
    )
    if unknown:
        owner = next(iter(withheld[unknown[0]].values()))
        raise CourseError(f"[{owner}] withheld names {unknown[0]}, not a file of the package")
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
            text = stubbed_source(catalogue, root_relative, text)
            if root_relative in withheld:
                text = withhold_functions(text, root_relative, withheld[root_relative])
            target.write_bytes(text.encode("utf-8"))
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
    torch_requirement = torch_install(root)
    extras = install_extras(root / "pyproject.toml")
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        pinned_pyproject(pyproject, torch_pin(torch_requirement)), encoding="utf-8"
    )
    if (root / "recipes").is_dir():  # `dlcc train NAME` looks for recipes beside src/
        # the recipes and the sweep search spaces beside them (recipes/spaces/*.yaml)
        for recipe in sorted((root / "recipes").glob("*.yaml")) + sorted(
            (root / "recipes").glob("spaces/*.yaml")
        ):
            target = folder / recipe.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(recipe, target)
    handout = folder / assignment.handout
    handout.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / assignment.handout, handout)
    write_notebook(root, assignment, folder / notebook_file(assignment))
    copy_public_tests(root, assignment, folder / assignment.tests_dir)
    public = Assignment(
        **{
            **assignment.__dict__,
            "tests": tuple(t for t in assignment.tests if t.visibility == "public"),
            "withheld": (),
            "release_hidden_points": assignment.points("hidden"),
        }
    )
    header = (
        f"Generated by `dlcc course release {assignment.id}`: this assignment and its public "
        "tests only."
    )
    catalogue_file = folder / CATALOGUE_PATH
    catalogue_file.parent.mkdir(parents=True, exist_ok=True)
    catalogue_file.write_text(render_catalogue([public], header), encoding="utf-8")
    (folder / "README.md").write_text(
        render_readme(public, torch_requirement, extras), encoding="utf-8"
    )
    (folder / "Makefile").write_text(
        render_makefile(public, torch_requirement, extras), encoding="utf-8"
    )
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
