"""The source check: a learner's files must not use what their assignment bans.

Two rules, both from the catalogue (`dlcc.course.catalogue`):

- ``[aN.banned_imports]``: the covered sources (``sources`` globs, default all of them) may
  not import the listed ``modules`` (a name bans the module and everything below it:
  ``torch`` bans ``torch.nn``). a1's NumPy files may not import torch, for instance.
- ``[aN.no_autograd]``: the named solution regions may not use autograd: ``.backward``,
  ``.grad``, ``.grad_fn``, ``torch.autograd``, ``torch.func`` or ``functorch``. A region is
  checked as the whole function it is named after (a learner's file has no fences), plus
  every top-level function of the same file that function names (helpers, transitively).

It is static: `ast` on the graded copy of each source, which is never imported. It finds
``import m``, ``import m.x as y``, ``from m import x``, imports inside functions, and the
string-literal forms ``__import__("m")``, ``importlib.import_module("m")`` (under any alias),
``importlib.util.find_spec("m")``, ``sys.modules["m"]``, ``getattr(obj, "backward")`` and
code in a literal string given to ``exec``, ``eval`` or ``compile``. A literal may be a
constant, a sum of constants, an f-string without fields or ``"".join`` of constants.

What it cannot catch: names built at run time (``__import__("to" + chr(114) + "ch")``,
decoded or downloaded strings, ``exec`` of a computed string); a banned module reached
through another module (a dlcc module, or a library, that imports it and hands it over);
autograd reached through a method, a class or a function of another module; anything done
through ``ctypes``, ``gc`` or frame objects. The check gives clear feedback on honest
mistakes and obvious shortcuts; the sandbox's runtime isolation is the real boundary, and an
instructor reading a suspicious submission the last.

A violation costs the tests that need the affected regions (the catalogue's ``regions`` of
each test): a banned import in a file, every test needing a region defined in that file; an
autograd use, every test needing that region. A test without ``regions`` may need anything,
so every violation costs it. Each costed test scores 0 with the violation as its feedback
("layers.py:3: imports torch, which a1 does not allow in its NumPy files (write it with
NumPy)"), and the report notes every violation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dlcc.course.catalogue import Assignment, GradedTest
from dlcc.course.outcome import Status, TestOutcome

AUTOGRAD_MODULES = ("torch.autograd", "torch.func", "functorch")
AUTOGRAD_ATTRIBUTES = ("backward", "grad", "grad_fn")
IMPORT_FUNCTIONS = ("__import__", "import_module", "find_spec")
RUN_FUNCTIONS = ("exec", "eval", "compile")
MAX_RUN_DEPTH = 3  # how deep it follows literal code given to exec inside literal code


@dataclass(frozen=True)
class Finding:
    """One banned use in a text: its line, and what it does ("imports torch")."""

    line: int
    what: str


@dataclass(frozen=True)
class Violation:
    """One rule broken by one graded source."""

    source: str  # root-relative, e.g. "src/dlcc/numpy_nn/layers.py"
    line: int
    message: str  # the learner's one line: "layers.py:3: imports torch, which a1 ..."
    regions: frozenset[str]  # the regions it costs


@dataclass(frozen=True)
class SourceCheck:
    """The violations one grading found, and what they cost."""

    violations: tuple[Violation, ...] = ()

    def costs(self, test: GradedTest) -> list[Violation]:
        """The violations that cost `test` its points."""
        return [
            violation
            for violation in self.violations
            if test.regions is None or violation.regions & set(test.regions)
        ]

    def outcome(self, test: GradedTest, ran: TestOutcome) -> TestOutcome:
        """`ran` (the test's outcome), or a failure naming the first violation that costs it."""
        costs = self.costs(test)
        if not costs:
            return ran
        more = f" (and {len(costs) - 1} more: see the notes)" if len(costs) > 1 else ""
        return TestOutcome(Status.FAILED, costs[0].message + more, ran.duration)

    @property
    def notes(self) -> list[str]:
        return [f"source check: {violation.message}" for violation in self.violations]


def check_sources(root: Path, assignment: Assignment, graded: Path) -> SourceCheck:
    """Check the graded copy of each of `assignment`'s sources (``graded/<source>``) against
    its rules. Regions are placed in files by the course root's copy (`root`), which the
    learner does not control. A source that cannot be read or parsed is skipped: it does not
    compile, so its tests fail anyway."""
    banned, no_autograd = assignment.banned_imports, assignment.no_autograd
    if banned is None and no_autograd is None:
        return SourceCheck()
    needed = {region for test in assignment.tests for region in test.regions or ()}
    violations = []
    for source in assignment.sources:
        tree = _parse_file(graded / source)
        if tree is None:
            continue
        try:
            violations += _violations(root, assignment, source, tree, needed)
        except RecursionError:  # nested past what the check follows: refuse, do not guess
            violations.append(
                Violation(
                    source,
                    1,
                    f"{Path(source).name}: nested too deeply for the source check to read; "
                    "write it plainly",
                    frozenset(needed & set(functions(tree))),
                )
            )
    return SourceCheck(tuple(violations))


def _violations(
    root: Path, assignment: Assignment, source: str, tree: ast.Module, needed: set[str]
) -> list[Violation]:
    """The violations of one graded source (`tree`)."""
    banned, no_autograd = assignment.banned_imports, assignment.no_autograd
    reference = _parse_file(root / source)
    in_file = needed & set(functions(reference)) if reference is not None else set()
    name = Path(source).name
    violations = []
    if banned is not None and banned.covers(source):
        for finding in banned_imports(tree, banned.modules):
            message = (
                f"{name}:{finding.line}: {finding.what}, which {assignment.id} does not allow "
                f"{banned.where}" + (f" ({banned.hint})" if banned.hint else "")
            )
            violations.append(Violation(source, finding.line, message, frozenset(in_file)))
    regions = [r for r in no_autograd.regions if r in in_file] if no_autograd else []
    for region in regions:
        for finding in autograd_uses(tree, region):
            message = (
                f"{name}:{finding.line}: {region} {finding.what}, which {assignment.id} does "
                "not allow there" + (f" ({no_autograd.hint})" if no_autograd.hint else "")
            )
            violations.append(Violation(source, finding.line, message, frozenset({region})))
    return violations


def _parse_file(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), path.name)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


# ---- banned imports ---------------------------------------------------------------------


def banned_imports(tree: ast.Module | str, modules: tuple[str, ...]) -> list[Finding]:
    """Every import of one of `modules` (or a module below one) in `tree` (a module or its
    text), in line order."""
    tree = ast.parse(tree) if isinstance(tree, str) else tree
    aliases = _aliases(tree)
    return sorted(set(_imports(tree, modules, aliases, 0)), key=lambda f: (f.line, f.what))


def _imports(
    tree: ast.AST, modules: tuple[str, ...], aliases: dict[str, str], depth: int
) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if banned := _banned(alias.name, modules):
                    yield Finding(node.lineno, f"imports {banned}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if banned := _banned(name, modules):
                    yield Finding(node.lineno, f"imports {banned}")
                    break
        elif isinstance(node, ast.Call):
            yield from _call_imports(node, modules, aliases, depth)
        elif isinstance(node, ast.Subscript) and _is_sys_modules(node.value):
            if banned := _banned(_literal(node.slice), modules):
                yield Finding(node.lineno, f"imports {banned} (through sys.modules)")


def _call_imports(
    node: ast.Call, modules: tuple[str, ...], aliases: dict[str, str], depth: int
) -> Iterator[Finding]:
    function = _last_part(node.func, aliases)
    arguments = [*node.args, *(k.value for k in node.keywords if k.arg in ("name", "source"))]
    first = _literal(arguments[0]) if arguments else None
    if function in IMPORT_FUNCTIONS:
        if banned := _banned(first, modules):
            yield Finding(node.lineno, f"imports {banned} (through {function})")
    elif function == "get" and isinstance(node.func, ast.Attribute):
        if _is_sys_modules(node.func.value) and (banned := _banned(first, modules)):
            yield Finding(node.lineno, f"imports {banned} (through sys.modules)")
    elif function in RUN_FUNCTIONS and first is not None and depth < MAX_RUN_DEPTH:
        try:
            inner = ast.parse(first)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        for finding in _imports(inner, modules, _aliases(inner), depth + 1):
            yield Finding(node.lineno, f"{finding.what} (in code given to {function})")


def _banned(name: str | None, modules: tuple[str, ...]) -> str | None:
    """The entry of `modules` that `name` is, or lies below; else None."""
    if not name:
        return None
    for module in modules:
        if name == module or name.startswith(module + "."):
            return module
    return None


def _is_sys_modules(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules"


# ---- autograd in a region ---------------------------------------------------------------


def autograd_uses(tree: ast.Module | str, region: str) -> list[Finding]:
    """Each use of autograd by the function `region` ("Class.method" or "name") of `tree` (a
    module or its text), or by a top-level function of `tree` it names (transitively); [] if
    there is no such function."""
    tree = ast.parse(tree) if isinstance(tree, str) else tree
    defined = functions(tree)
    if region not in defined:
        return []
    top_level = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    aliases = _aliases(tree)
    findings: set[Finding] = set()
    pending: list[tuple[ast.AST, str]] = [(defined[region], "")]
    seen = {id(defined[region])}
    while pending:
        function, through = pending.pop()
        for line, what in _autograd_in(function, aliases):
            findings.add(Finding(line, f"{through}{what}"))
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and node.id in top_level:
                helper = top_level[node.id]
                if id(helper) not in seen:
                    seen.add(id(helper))
                    pending.append((helper, f"(through {node.id}) "))
    return sorted(findings, key=lambda f: (f.line, f.what))


def _autograd_in(function: ast.AST, aliases: dict[str, str]) -> Iterator[tuple[int, str]]:
    inner = {id(node.value) for node in ast.walk(function) if isinstance(node, ast.Attribute)}
    inner |= {
        id(node.args[0])
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and _getattr_literal(node) is not None
    }
    for finding in _imports(function, AUTOGRAD_MODULES, aliases, 0):
        yield finding.line, finding.what
    for node in ast.walk(function):
        if id(node) in inner:
            continue  # part of a longer chain, checked with it
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if _banned(aliases.get(node.id), AUTOGRAD_MODULES):
                yield node.lineno, f"uses {aliases[node.id]}"
        elif isinstance(node, ast.Attribute) or _getattr_literal(node) is not None:
            dotted = _dotted(node, aliases)
            if _banned(dotted, AUTOGRAD_MODULES):
                yield node.lineno, f"uses {dotted}"
                continue
            for attribute in _chain_attributes(node):
                if attribute in AUTOGRAD_ATTRIBUTES:
                    what = ".backward()" if attribute == "backward" else f".{attribute}"
                    yield node.lineno, f"uses {what} (autograd)"
                    break


# ---- names --------------------------------------------------------------------------------


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function of `tree` by qualified name ("Class.method", "outer.inner"), as
    `dlcc.course.fences` names a region's enclosing function."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    pending: list[tuple[ast.AST, str]] = [(tree, "")]
    while pending:
        node, prefix = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    found.setdefault(name, child)
                pending.append((child, name + "."))
            else:
                pending.append((child, prefix))
    return found


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was bound to by an import anywhere in `tree`
    (``import torch.autograd as ag``: ag -> torch.autograd), or by a plain assignment of
    such a name (``ag = torch.autograd``)."""
    aliases: dict[str, str] = {}
    assignments = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            if isinstance(node.targets[0], ast.Name):
                assignments.append((node.targets[0].id, node.value))
    for _ in range(3):  # chains of assignments, a few deep
        for name, value in assignments:
            dotted = _dotted(value, aliases)
            if dotted is not None and name not in aliases:
                aliases[name] = dotted
    return aliases


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The dotted name an expression denotes (``t.autograd.grad`` with t = torch:
    "torch.autograd.grad"; ``getattr(t, "func")``: "torch.func"), or None."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif (attribute := _getattr_literal(node)) is not None:
            parts.append(attribute)
            node = node.args[0]
        elif isinstance(node, ast.Name):
            base = aliases.get(node.id)
            return None if base is None else ".".join([base, *reversed(parts)])
        else:
            return None


def _chain_attributes(node: ast.AST) -> Iterator[str]:
    """The attribute names along a chain ``a.b.c`` or ``getattr(a, "b")``, outermost first."""
    while True:
        if isinstance(node, ast.Attribute):
            yield node.attr
            node = node.value
        elif (attribute := _getattr_literal(node)) is not None:
            yield attribute
            node = node.args[0]
        elif isinstance(node, ast.Call):
            node = node.func  # x.detach().backward(): look through calls too
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return


def _last_part(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The last name of what a call calls: ``importlib.import_module`` -> "import_module",
    ``im`` after ``from importlib import import_module as im`` -> "import_module"."""
    dotted = _dotted(node, aliases)
    if dotted is not None:
        return dotted.rsplit(".", 1)[-1]
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return _getattr_literal(node)


def _getattr_literal(node: ast.AST) -> str | None:
    """ "b" for ``getattr(a, "b")`` (or ``getattr(a, "b", default)``), else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
    ):
        return _literal(node.args[1])
    return None


def _literal(node: ast.AST) -> str | None:
    """The string an expression always evaluates to, for the obvious forms (a constant, a sum
    of them, an f-string without fields, ``"".join`` of constants); else None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [_literal(value) for value in node.values]
        return None if None in parts else "".join(parts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.List | ast.Tuple)
    ):
        separator = _literal(node.func.value)
        parts = [_literal(element) for element in node.args[0].elts]
        return None if separator is None or None in parts else separator.join(parts)
    return None
