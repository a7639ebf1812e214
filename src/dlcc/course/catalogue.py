"""The course catalogue, ``assignments/catalogue.toml``: each assignment and how it is graded.

One table per assignment, its graded tests as an array of tables::

    [a1]
    title = "Set-up and basic NN"
    handout = "assignments/a1/README.md"
    sources = ["src/dlcc/numpy_nn/layers.py"]   # files the learner edits
    tests_dir = "tests/course/a1"               # graded tests (plus conftest.py / helpers)
    timeout_s = 60                              # default per-test wall-clock limit (seconds)
    memory_mb = 4096                            # address-space cap per grading process

    [[a1.tests]]
    test = "test_a1_linear.py::test_linear_forward_known_answer"  # node id in tests_dir
    points = 2
    visibility = "public"                       # or "hidden"
    part = "Part 1: MLP"                        # grouping in the results table
    # timeout_s = 180                           # optional per-test override
    # regions = ["Linear.forward"]              # optional: the solution regions it needs

    [a1.banned_imports]                         # optional: what the learner's files may not import
    modules = ["torch", "jax"]                  # top-level or dotted module names
    sources = ["src/dlcc/numpy_nn/*.py"]        # optional: globs over the sources; default all
    where = "in its NumPy files"                # optional: ends "which a1 does not allow ..."
    hint = "write it with NumPy"                # optional: the advice in brackets after it

    [a2]
    title = "PyTorch model building"
    handout = "assignments/a2/README.md"
    status = "planned"                          # handout only; release and grade refuse it

    [a2.no_autograd]                            # optional: regions that must not use autograd
    regions = ["two_layer_net_backward"]        # solution regions (function names)
    hint = "compute the gradients by hand"      # optional advice, as above

`dlcc.course.source_check` enforces the last two on the learner's files, statically.

Validation is strict and happens on load: unknown keys (with the closest known key
suggested), missing fields, wrong types, files that do not exist, a test listed twice,
points <= 0, a bad visibility, a source claimed by two assignments, a banned module that is
not a dotted name, a ``sources`` glob that matches none of the assignment's sources.

The course root is the directory that holds ``assignments/catalogue.toml``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.course.errors import CourseError
from dlcc.suggest import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CATALOGUE_PATH = Path("assignments") / "catalogue.toml"
PACKAGE_SOURCE = Path("src") / "dlcc"
ASSIGNMENT_ID = re.compile(r"[a-z][a-z0-9_]*")
ASSIGNMENT_KEYS = (
    "title",
    "handout",
    "status",
    "sources",
    "tests_dir",
    "timeout_s",
    "memory_mb",
    "withheld",
    "release_hidden_points",
    "banned_imports",
    "no_autograd",
    "tests",
)
BANNED_IMPORTS_KEYS = ("modules", "sources", "where", "hint")
NO_AUTOGRAD_KEYS = ("regions", "hint")
DEFAULT_BANNED_WHERE = "in this file"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
TEST_KEYS = ("test", "points", "visibility", "part", "timeout_s", "regions")
STATUSES = ("ready", "planned")
VISIBILITIES = ("public", "hidden")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MB = 4096
DEFAULT_PART = "Tests"


@dataclass(frozen=True)
class GradedTest:
    """One graded pytest test (or one parametrised case of it)."""

    test: str  # node id relative to the assignment's tests_dir: "test_x.py::test_y[case]"
    points: float
    visibility: str  # "public" or "hidden"
    part: str  # grouping shown in the results table
    timeout_s: float | None = None  # None: the assignment's timeout_s
    regions: tuple[str, ...] | None = None  # solution regions (function names) it relies on

    @property
    def file(self) -> str:
        """The test file, relative to tests_dir: "test_x.py"."""
        return self.test.split("::", 1)[0]

    @property
    def function(self) -> str:
        """The test function's name without parameters: "test_y" (class prefix dropped)."""
        return self.test.split("::")[-1].split("[", 1)[0]

    @property
    def qualified_function(self) -> str:
        """Class and function without parameters: "TestX::test_y" or "test_y"."""
        return self.test.split("::", 1)[1].split("[", 1)[0]


@dataclass(frozen=True)
class BannedImports:
    """The catalogue's ``[aN.banned_imports]``: modules the learner's files may not import."""

    modules: tuple[str, ...]  # "torch", or dotted ("torch.autograd"): the module and below
    sources: tuple[str, ...] = ()  # globs over the assignment's sources, as written; (): all
    where: str = DEFAULT_BANNED_WHERE  # the feedback's "which a1 does not allow <where>"
    hint: str = ""  # the feedback's advice, in brackets at its end

    def covers(self, source: str) -> bool:
        """Whether the ban applies to `source` (root-relative)."""
        return not self.sources or any(glob_matches(p, source) for p in self.sources)


@dataclass(frozen=True)
class NoAutograd:
    """The catalogue's ``[aN.no_autograd]``: solution regions to be written without autograd."""

    regions: tuple[str, ...]  # region (function) names, as in a test's ``regions``
    hint: str = ""


@dataclass(frozen=True)
class Assignment:
    """One assignment of the catalogue. Paths are relative to the course root, POSIX style."""

    id: str
    title: str
    handout: str
    status: str = "ready"
    sources: tuple[str, ...] = ()
    tests_dir: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    tests: tuple[GradedTest, ...] = ()
    # Helpers outside `sources` that would compute a graded region's answer, as
    # "path::function": a release of this assignment stubs their bodies (`dlcc.course.withhold`).
    withheld: tuple[str, ...] = ()
    # Set only in a release's catalogue: the points of the hidden tests it leaves out (graded
    # after submission). Its presence marks the catalogue as a release's.
    release_hidden_points: float | None = None
    # What the learner's files may not use (`dlcc.course.source_check`); None: no rule.
    banned_imports: BannedImports | None = None
    no_autograd: NoAutograd | None = None

    @property
    def is_release(self) -> bool:
        return self.release_hidden_points is not None

    @property
    def planned(self) -> bool:
        return self.status == "planned"

    def selected_tests(self, hidden: bool) -> list[GradedTest]:
        """The tests a grading run counts: public ones, plus hidden ones when `hidden`."""
        return [t for t in self.tests if hidden or t.visibility == "public"]

    def points(self, visibility: str) -> float:
        """Total points of the tests with this visibility."""
        return sum(t.points for t in self.tests if t.visibility == visibility)

    def test_timeout(self, test: GradedTest) -> float:
        return test.timeout_s if test.timeout_s is not None else self.timeout_s


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue of a course root."""

    root: Path
    assignments: dict[str, Assignment] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / CATALOGUE_PATH

    def get(self, assignment_id: str) -> Assignment:
        """The assignment, or a `CourseError` listing the known ids."""
        if assignment_id in self.assignments:
            return self.assignments[assignment_id]
        known = ", ".join(self.assignments) or "none"
        hint = did_you_mean(assignment_id, list(self.assignments))
        raise CourseError(
            f"no assignment {assignment_id!r} in {self.path}{hint}; known assignments: {known}"
        )

    def ready(self, assignment_id: str) -> Assignment:
        """The assignment, refusing a planned one (it has no sources or graded tests yet)."""
        assignment = self.get(assignment_id)
        if assignment.planned:
            raise CourseError(
                f"{assignment_id} is planned: its handout is a stub and it has no graded tests yet"
            )
        return assignment

    def source_owners(self) -> dict[str, str]:
        """Each learner-edited source file (root-relative) -> the assignment that owns it."""
        return {
            source: assignment.id
            for assignment in self.assignments.values()
            for source in assignment.sources
        }


def find_root(explicit: str | os.PathLike | None = None) -> Path:
    """The course root: `explicit` if given, else the first directory holding
    ``assignments/catalogue.toml`` above the imported ``dlcc`` package (a checkout or an
    editable install of a release), else above the current directory."""
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not (root / CATALOGUE_PATH).is_file():
            raise CourseError(
                f"--root {explicit}: expected a course root holding {CATALOGUE_PATH.as_posix()}, "
                f"but {root / CATALOGUE_PATH} does not exist"
            )
        return root
    import dlcc  # the package this module belongs to; nothing it grades

    starts = [Path(dlcc.__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for directory in [start, *start.parents]:
            if (directory / CATALOGUE_PATH).is_file():
                return directory
    raise CourseError(
        f"cannot find {CATALOGUE_PATH.as_posix()} above {starts[0]} or the current directory "
        f"{starts[1]}: pass --root DIR (the course checkout or release folder) or run from a "
        "checkout"
    )


def load_catalogue(root: str | os.PathLike) -> Catalogue:
    """Read and validate ``root/assignments/catalogue.toml``; `CourseError` on any problem."""
    root = Path(root).resolve()
    path = root / CATALOGUE_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CourseError(f"{path} does not exist: a course root holds its catalogue") from None
    except tomllib.TOMLDecodeError as error:
        raise CourseError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CourseError(f"{path}: cannot read it: {error}") from None
    where = CATALOGUE_PATH.as_posix()
    assignments = {}
    for assignment_id, table in data.items():
        context = f"{where}: [{assignment_id}]"
        if not ASSIGNMENT_ID.fullmatch(assignment_id):
            raise CourseError(
                f"{context}: an assignment id is lower-case letters, digits and '_', starting "
                "with a letter (like a1)"
            )
        if not isinstance(table, dict):
            raise CourseError(f"{context}: expected a table, got {type(table).__name__}")
        assignments[assignment_id] = _assignment(root, assignment_id, table, context)
    if not assignments:
        raise CourseError(f"{path}: no assignments; add a table such as [a1]")
    owners: dict[str, str] = {}
    for assignment in assignments.values():
        for source in assignment.sources:
            if source in owners:
                raise CourseError(
                    f"{where}: {source} is a source of both {owners[source]} and "
                    f"{assignment.id}; a file belongs to one assignment"
                )
            owners[source] = assignment.id
    return Catalogue(root=root, assignments=assignments)


def glob_matches(pattern: str, path: str) -> bool:
    """Whether the POSIX `path` matches `pattern` part by part ("*" never crosses a "/")."""
    globs, parts = pattern.split("/"), path.split("/")
    return len(globs) == len(parts) and all(
        fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, globs, strict=True)
    )


def _assignment(root: Path, assignment_id: str, table: dict, context: str) -> Assignment:
    _check_keys(table, ASSIGNMENT_KEYS, context)
    status = table.get("status", "ready")
    if status not in STATUSES:
        raise CourseError(f"{context}: status must be one of {STATUSES}; got {status!r}")
    required = ["title", "handout"] if status == "planned" else ["title", "handout", "sources"]
    required += [] if status == "planned" else ["tests_dir", "tests"]
    for key in required:
        if key not in table:
            raise CourseError(f"{context}: missing {key!r} (needed for a {status} assignment)")
    title = _string(table, "title", context)
    handout = _existing_path(root, _string(table, "handout", context), f"{context} handout")
    if not (root / handout).is_file():
        raise CourseError(f"{context}: handout {handout} is not a file")
    sources = _sources(root, table.get("sources", []), context)
    tests_dir = None
    if "tests_dir" in table:
        tests_dir = _existing_path(root, _string(table, "tests_dir", context), context)
        if not (root / tests_dir).is_dir():
            raise CourseError(f"{context}: tests_dir {tests_dir} is not a directory")
    timeout_s = _positive(table.get("timeout_s", DEFAULT_TIMEOUT_S), f"{context} timeout_s")
    memory_mb = table.get("memory_mb", DEFAULT_MEMORY_MB)
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 256:
        raise CourseError(f"{context}: memory_mb must be an integer >= 256; got {memory_mb!r}")
    withheld = table.get("withheld", [])
    if not isinstance(withheld, list) or not all(
        isinstance(item, str) and item.count("::") == 1 for item in withheld
    ):
        raise CourseError(f'{context}: withheld must be a list of "path.py::function" strings')
    for item in withheld:
        _existing_path(root, item.partition("::")[0], f"{context} withheld")
    release_hidden_points = table.get("release_hidden_points")
    if release_hidden_points is not None:
        if isinstance(release_hidden_points, bool) or not isinstance(
            release_hidden_points, int | float
        ):
            raise CourseError(f"{context}: release_hidden_points must be a number >= 0")
        release_hidden_points = float(release_hidden_points)
        if not release_hidden_points >= 0:
            raise CourseError(f"{context}: release_hidden_points must be a number >= 0")
    banned_imports = None
    if "banned_imports" in table:
        banned_imports = _banned_imports(table["banned_imports"], sources, assignment_id, context)
    no_autograd = None
    if "no_autograd" in table:
        no_autograd = _no_autograd(table["no_autograd"], assignment_id, context)
    raw_tests = table.get("tests", [])
    if not isinstance(raw_tests, list) or not all(isinstance(t, dict) for t in raw_tests):
        raise CourseError(
            f"{context}: tests must be an array of tables, written [[{assignment_id}.tests]]"
        )
    if status == "ready" and not raw_tests:
        raise CourseError(
            f"{context}: a ready assignment needs at least one [[{assignment_id}.tests]]"
        )
    if raw_tests and tests_dir is None:
        raise CourseError(f"{context}: tests are listed but tests_dir is missing")
    tests = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw_tests):
        test = _graded_test(root, tests_dir, entry, f"{context} tests[{index}]")
        if test.test in seen:
            raise CourseError(
                f"{context} tests[{index}]: {test.test} is listed twice (first as "
                f"tests[{seen[test.test]}]); list each test once"
            )
        seen[test.test] = index
        tests.append(test)
    return Assignment(
        id=assignment_id,
        title=title,
        handout=handout,
        status=status,
        sources=sources,
        tests_dir=tests_dir,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        tests=tuple(tests),
        withheld=tuple(withheld),
        release_hidden_points=release_hidden_points,
        banned_imports=banned_imports,
        no_autograd=no_autograd,
    )


def _banned_imports(
    table: object, sources: tuple[str, ...], assignment_id: str, context: str
) -> BannedImports:
    context = f"{context} banned_imports"
    if not isinstance(table, dict):
        raise CourseError(
            f"{context}: expected a table, written [{assignment_id}.banned_imports], with "
            'modules = ["torch", ...]'
        )
    _check_keys(table, BANNED_IMPORTS_KEYS, context)
    if "modules" not in table:
        raise CourseError(f"{context}: missing 'modules' (the modules it bans, like ['torch'])")
    modules = _string_list(table, "modules", context, "module names like ['torch']")
    if not modules:
        raise CourseError(f"{context}: modules is empty; list a module, or drop the table")
    for module in modules:
        if not MODULE_NAME.fullmatch(module):
            raise CourseError(
                f"{context}: {module!r} is not a module name (like 'torch' or 'torch.autograd')"
            )
    patterns = _string_list(table, "sources", context, "globs like ['src/dlcc/numpy_nn/*.py']")
    for pattern in patterns:
        if not any(glob_matches(pattern, source) for source in sources):
            raise CourseError(
                f"{context}: sources pattern {pattern!r} matches none of {assignment_id}'s "
                f"sources ({', '.join(sources) or 'none'})"
            )
    where = table.get("where", DEFAULT_BANNED_WHERE)
    if not isinstance(where, str) or not where.strip():
        raise CourseError(f"{context}: where must be a non-empty string; got {where!r}")
    return BannedImports(tuple(modules), tuple(patterns), where, _hint(table, context))


def _no_autograd(table: object, assignment_id: str, context: str) -> NoAutograd:
    context = f"{context} no_autograd"
    if not isinstance(table, dict):
        raise CourseError(
            f"{context}: expected a table, written [{assignment_id}.no_autograd], with "
            'regions = ["name", ...]'
        )
    _check_keys(table, NO_AUTOGRAD_KEYS, context)
    if "regions" not in table:
        raise CourseError(f"{context}: missing 'regions' (the solution regions it covers)")
    regions = _string_list(table, "regions", context, "function names like ['Linear.backward']")
    if not regions:
        raise CourseError(f"{context}: regions is empty; list a region, or drop the table")
    return NoAutograd(tuple(regions), _hint(table, context))


def _string_list(table: dict, key: str, context: str, like: str) -> list[str]:
    values = table.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise CourseError(f"{context}: {key} must be a list of {like}; got {values!r}")
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise CourseError(f"{context}: {key} lists {duplicates[0]!r} twice")
    return values


def _hint(table: dict, context: str) -> str:
    hint = table.get("hint", "")
    if not isinstance(hint, str):
        raise CourseError(f"{context}: hint must be a string; got {hint!r}")
    return hint.strip()


def _graded_test(root: Path, tests_dir: str | None, entry: dict, context: str) -> GradedTest:
    if isinstance(entry.get("test"), str):
        context = f"{context} ({entry['test']})"
    _check_keys(entry, TEST_KEYS, context)
    for key in ("test", "points", "visibility"):  # visibility too: a slip must not leak tests
        if key not in entry:
            raise CourseError(f"{context}: missing {key!r}")
    test_id = _string(entry, "test", context)
    file_part, _, name = test_id.partition("::")
    if not name or not file_part.endswith(".py") or not _is_relative_posix(file_part):
        raise CourseError(
            f"{context}: test must be a pytest node id relative to tests_dir, like "
            "'test_a1_linear.py::test_forward'"
        )
    if not (root / tests_dir / file_part).is_file():
        raise CourseError(f"{context}: test file {tests_dir}/{file_part} does not exist")
    points = _positive(entry["points"], f"{context} points")
    visibility = entry["visibility"]
    if visibility not in VISIBILITIES:
        hint = did_you_mean(str(visibility), list(VISIBILITIES))
        raise CourseError(
            f"{context}: visibility must be 'public' or 'hidden'; got {visibility!r}{hint}"
        )
    part = entry.get("part", DEFAULT_PART)
    if not isinstance(part, str) or not part.strip():
        raise CourseError(f"{context}: part must be a non-empty string; got {part!r}")
    timeout_s = None
    if "timeout_s" in entry:
        timeout_s = _positive(entry["timeout_s"], f"{context} timeout_s")
    regions = None
    if "regions" in entry:
        regions = entry["regions"]
        if not isinstance(regions, list) or not all(
            isinstance(r, str) and r.strip() for r in regions
        ):
            raise CourseError(
                f"{context}: regions must be a list of function names like ['Linear.forward']"
            )
        regions = tuple(regions)
    return GradedTest(test_id, points, visibility, part, timeout_s, regions)


def _sources(root: Path, sources: object, context: str) -> tuple[str, ...]:
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise CourseError(f"{context}: sources must be a list of paths like ['src/dlcc/x.py']")
    result = []
    for source in sources:
        path = _existing_path(root, source, f"{context} sources")
        if not path.startswith(PACKAGE_SOURCE.as_posix() + "/") or not path.endswith(".py"):
            raise CourseError(
                f"{context}: source {source} must be a .py file under {PACKAGE_SOURCE.as_posix()}/ "
                "(the grader overlays learners' files on the package)"
            )
        if path in result:
            raise CourseError(f"{context}: source {source} is listed twice")
        result.append(path)
    return tuple(result)


def _existing_path(root: Path, relative: str, context: str) -> str:
    if not _is_relative_posix(relative):
        raise CourseError(
            f"{context}: {relative!r} must be a path relative to the course root, with '/' "
            "separators and no '..'"
        )
    if not (root / relative).exists():
        raise CourseError(f"{context}: {relative} does not exist under {root}")
    return relative


def _is_relative_posix(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and "\\" not in path and not path.startswith("/") and ".." not in parts


def _string(table: dict, key: str, context: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise CourseError(f"{context}: {key} must be a non-empty string; got {value!r}")
    return value


def _positive(value: object, context: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CourseError(f"{context} must be a number; got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise CourseError(f"{context} must be > 0; got {value!r}")
    return value


def _check_keys(table: dict, known: tuple[str, ...], context: str) -> None:
    for key in table:
        if key not in known:
            raise CourseError(
                f"{context}: unknown key {key!r}{did_you_mean(key, list(known))}; "
                f"known keys: {', '.join(known)}"
            )


def render_catalogue(assignments: list[Assignment], header: str = "") -> str:
    """TOML text for `assignments` (the same schema `load_catalogue` reads); deterministic."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for assignment in assignments:
        if lines:
            lines.append("")
        lines.append(f"[{assignment.id}]")
        lines.append(f"title = {_toml(assignment.title)}")
        lines.append(f"handout = {_toml(assignment.handout)}")
        if assignment.planned:
            lines.append('status = "planned"')
        if assignment.sources:
            lines.append("sources = [")
            lines.extend(f"    {_toml(source)}," for source in assignment.sources)
            lines.append("]")
        if assignment.tests_dir is not None:
            lines.append(f"tests_dir = {_toml(assignment.tests_dir)}")
        lines.append(f"timeout_s = {_toml(assignment.timeout_s)}")
        lines.append(f"memory_mb = {_toml(assignment.memory_mb)}")
        if assignment.withheld:
            lines.append(f"withheld = [{', '.join(_toml(w) for w in assignment.withheld)}]")
        if assignment.release_hidden_points is not None:
            lines.append(f"release_hidden_points = {_toml(assignment.release_hidden_points)}")
        lines.extend(_render_rules(assignment))
        for test in assignment.tests:
            lines.extend(["", f"[[{assignment.id}.tests]]", f"test = {_toml(test.test)}"])
            lines.append(f"points = {_toml(test.points)}")
            lines.append(f"visibility = {_toml(test.visibility)}")
            lines.append(f"part = {_toml(test.part)}")
            if test.timeout_s is not None:
                lines.append(f"timeout_s = {_toml(test.timeout_s)}")
            if test.regions is not None:
                lines.append(f"regions = [{', '.join(_toml(r) for r in test.regions)}]")
    return "\n".join(lines) + "\n"


def _render_rules(assignment: Assignment) -> list[str]:
    """The ``[aN.banned_imports]`` and ``[aN.no_autograd]`` tables, if set."""
    lines = []
    banned, no_autograd = assignment.banned_imports, assignment.no_autograd
    if banned is not None:
        lines.extend(["", f"[{assignment.id}.banned_imports]"])
        lines.append(f"modules = {_toml_list(banned.modules)}")
        if banned.sources:
            lines.append(f"sources = {_toml_list(banned.sources)}")
        if banned.where != DEFAULT_BANNED_WHERE:
            lines.append(f"where = {_toml(banned.where)}")
        if banned.hint:
            lines.append(f"hint = {_toml(banned.hint)}")
    if no_autograd is not None:
        lines.extend(["", f"[{assignment.id}.no_autograd]"])
        lines.append(f"regions = {_toml_list(no_autograd.regions)}")
        if no_autograd.hint:
            lines.append(f"hint = {_toml(no_autograd.hint)}")
    return lines


def _toml_list(values: tuple[str, ...]) -> str:
    """A TOML array on one line, or one item a line when that would be long."""
    one_line = f"[{', '.join(_toml(value) for value in values)}]"
    if len(one_line) <= 80:
        return one_line
    return "[\n" + "".join(f"    {_toml(value)},\n" for value in values) + "]"


def _toml(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML escapes
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def format_points(points: float) -> str:
    """2 -> "2", 2.5 -> "2.5": points as a person writes them."""
    return str(int(points)) if float(points).is_integer() else f"{points:g}"
