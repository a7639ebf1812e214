"""Helpers a release leaves out: functions outside an assignment's sources that would compute
one of its graded regions' answers.

An assignment lists them in the catalogue as ``withheld = ["src/dlcc/x.py::name", ...]``
(a top-level function, or ``Class.method``). Its release keeps each one's signature and
docstring, so everything still imports, and replaces the rest of its body with::

    raise NotImplementedError("a2: name is left out of this release: ...")

Only that assignment's release is changed. Use it for a helper no code of the release needs
to run (for example the NumPy one-cycle formula in a2's release, whose NumPy trainer cannot
train anyway, as a1's layers are stubs there); fence a helper that the release does need.
"""

from __future__ import annotations

import ast
import json

from dlcc.course.errors import CourseError
from dlcc.course.fences import split_lines


def withheld_by_file(withheld: tuple[str, ...]) -> dict[str, list[str]]:
    """``("path::name", ...)`` -> ``{path: [name, ...]}``, in the order given."""
    by_file: dict[str, list[str]] = {}
    for item in withheld:
        path, _, name = item.partition("::")
        by_file.setdefault(path, []).append(name)
    return by_file


def withhold_functions(text: str, filename: str, names: list[str], assignment_id: str) -> str:
    """`text` with the body of each named function (after its docstring) replaced by a stub."""
    tree = ast.parse(text, filename)
    lines = split_lines(text)
    spans = []  # (first line replaced, last line replaced, stub), 1-based
    for name in names:
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
