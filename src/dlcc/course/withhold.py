"""Helpers a release leaves out: functions outside an assignment's sources that would compute
one of its graded regions' answers.

An assignment lists them in the catalogue as ``withheld = ["src/dlcc/x.py::name", ...]``
(a top-level function, or ``Class.method``). Every release keeps each one's signature and
docstring, so everything still imports, and replaces the rest of its body with::

    raise NotImplementedError("a2: name is left out of this release: ...")

The id is the withholding assignment's. Every release, not only that assignment's: releases
go out one after the other, and a learner keeps the earlier ones, so a helper left in a1's
release would answer a2 for everyone who took a1 (the NumPy one-cycle formula, which a2's
``onecycle_lr`` region asks for, is the case in point). The Gradescope bundles stub them too.
So withhold only a helper that no release needs to run, or make what needs it cope: the NumPy
trainer's default schedule falls back to cosine where the one-cycle formula is withheld
(`dlcc.numpy_trainer.settings`), and a1's tests do not use it. Fence a helper a release does
need instead.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable

from dlcc.course.catalogue import Assignment
from dlcc.course.errors import CourseError
from dlcc.course.fences import split_lines


def withheld_by_file(assignments: Iterable[Assignment]) -> dict[str, dict[str, str]]:
    """Every helper the `assignments` withhold, by file: ``{path: {name: assignment id}}``,
    in catalogue order; a helper two assignments withhold goes to the first."""
    by_file: dict[str, dict[str, str]] = {}
    for assignment in assignments:
        for item in assignment.withheld:
            path, _, name = item.partition("::")
            by_file.setdefault(path, {}).setdefault(name, assignment.id)
    return by_file


def withhold_functions(text: str, filename: str, names: dict[str, str]) -> str:
    """`text` with the body of each named function (after its docstring) replaced by a stub
    naming the assignment that withholds it (`names`: function -> assignment id)."""
    tree = ast.parse(text, filename)
    lines = split_lines(text)
    spans = []  # (first line replaced, last line replaced, stub), 1-based
    for name, assignment_id in names.items():
        node = _find(tree, name)
        if node is None:
            raise CourseError(
                f"{filename}: the catalogue withholds {name!r}, but there is no such function"
            )
        code = node.body[1:] if _has_docstring(node) else node.body
        indent = " " * node.body[0].col_offset
        message = json.dumps(
            f"{assignment_id}: {name} is left out of this release: it would give away a graded "
            "answer"
        )
        first = code[0].lineno if code else node.end_lineno + 1
        stub = f"{indent}raise NotImplementedError({message})\n"
        spans.append((first, node.end_lineno, stub))
    result = list(lines)
    for first, last, stub in sorted(spans, reverse=True):
        result[first - 1 : last] = [stub]
    output = "".join(result)
    try:
        compile(output, filename, "exec", dont_inherit=True)
    except SyntaxError as error:  # pragma: no cover - a bug here, not the instructor's
        raise CourseError(f"{filename}:{error.lineno}: withholding left {error.msg}") from None
    return output


def _find(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    scope: list[ast.stmt] = tree.body
    *classes, function = name.split(".")
    for class_name in classes:
        found = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == class_name]
        if not found:
            return None
        scope = found[0].body
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return node
    return None


def _has_docstring(node: ast.AST) -> bool:
    body = node.body
    return bool(
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
