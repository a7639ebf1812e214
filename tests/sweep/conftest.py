"""Sweep tests: optuna present, a tiny recipe file, and a working directory in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import RECIPE, write_yaml

pytest.importorskip("optuna")


@pytest.fixture
def recipe(tmp_path) -> Path:
    return write_yaml(tmp_path / "tiny.yaml", RECIPE)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
