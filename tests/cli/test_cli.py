"""The `dlcc` command line: every command group registers, a broken one is an error, every
handler returns an int, and shared options come from the leaf module `dlcc.cli_options`."""

from __future__ import annotations

import argparse
import ast
import inspect
from pathlib import Path

import pytest

import dlcc
from dlcc import cli


def _leaf_parsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _leaf_parsers(child)
            return
    yield parser


def test_every_command_group_registers_and_every_leaf_has_an_int_handler():
    parser = cli.build_parser()
    leaves = list(_leaf_parsers(parser))
    names = {leaf.prog.removeprefix("dlcc ") for leaf in leaves}
    assert {"doctor", "train", "eval", "numpy train", "data list", "course grade"} <= names
    for leaf in leaves:
        handler = leaf.get_default("handler")
        assert callable(handler), leaf.prog
        parameters = list(inspect.signature(handler).parameters)
        assert len(parameters) == 1, f"{leaf.prog}: handler(args) expected, got {parameters}"
        assert inspect.signature(handler).return_annotation in ("int", int), leaf.prog


def test_a_command_module_that_fails_to_import_is_an_error(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "dlcc.no_such_commands"])
    with pytest.raises(ModuleNotFoundError, match=r"dlcc\.no_such_commands"):
        cli.build_parser()


def test_no_module_imports_the_command_line_back():
    """Shared options live in dlcc.cli_options, a leaf: only __main__ imports dlcc.cli."""
    package = Path(dlcc.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "dlcc.cli":
                offenders.append(str(path.relative_to(package)))
    assert offenders == ["__main__.py"]
    leaf = ast.parse((package / "cli_options.py").read_text(encoding="utf-8"))
    imported = [n.module for n in ast.walk(leaf) if isinstance(n, ast.ImportFrom)]
    assert not [name for name in imported if name and name.startswith("dlcc")]
