"""What a release's text mentions: repo-relative paths and ``make`` targets (for the tests).

Markdown, TOML, YAML and the Makefile are read whole. In Python only the comments and the
strings that are not docstrings count (the messages a learner sees); docstrings are notes
for developers and may name files of the course repository.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

PATH = re.compile(r"(?<![\w./-])((?:assignments|recipes|tests|src|benchmarks)/[\w./-]*\w)")
MAKE = re.compile(r"`make ([a-z][a-z-]*)|^\s*make ([a-z][a-z-]*)", re.M)
PLACEHOLDER = re.compile(r"/(?:[A-Z_]+|aN|x)(?:\.\w+)?(?:/|$)")  # recipes/NAME.yaml, src/dlcc/x.py
TEXT_SUFFIXES = (".md", ".toml", ".yaml", ".yml", ".txt", ".cfg")


def text_files(root: Path) -> list[Path]:
    names = ("Makefile",)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and ".venv" not in p.parts
        and (p.suffix in (*TEXT_SUFFIXES, ".py") or p.name in names)
    )


def python_messages(text: str) -> str:
    """The comments and non-docstring string constants of a Python file, one per line."""
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    pieces = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    pieces += [token.string for token in tokens if token.type == tokenize.COMMENT]
    return "\n".join(pieces)


def missing_mentions(root: Path) -> list[str]:
    """ "file: what" for each path or make target a release's text mentions and lacks."""
    makefile = root / "Makefile"
    targets = set()
    if makefile.is_file():
        targets = set(re.findall(r"^([a-z][a-z-]*):", makefile.read_text(), re.M))
    problems = []
    for path in text_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".py":
            text = python_messages(text)
        where = path.relative_to(root).as_posix()
        for match in PATH.finditer(text):
            mentioned = match.group(1).rstrip(".")
            if PLACEHOLDER.search(mentioned):
                continue
            if not (root / mentioned).exists():
                problems.append(f"{where}: {mentioned}")
        for match in MAKE.finditer(text):
            target = match.group(1) or match.group(2)
            if target not in targets:
                problems.append(f"{where}: make {target}")
        if "Makefile" in text and not makefile.is_file():
            problems.append(f"{where}: Makefile")
    return sorted(set(problems))
