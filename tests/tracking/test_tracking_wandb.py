"""Weights & Biases as a second backend, in its offline mode (no account, no network)."""

from __future__ import annotations

import pytest

from dlcc.cli import main

wandb = pytest.importorskip("wandb")


def test_with_dlcc_wandb_a_run_goes_to_mlflow_and_to_an_offline_wandb_run(
    tracked, recipe, monkeypatch
):
    monkeypatch.setenv("DLCC_WANDB", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tracked / "a"))
    assert main(["train", str(recipe), "--out", "runs/a"]) == 0
    assert (tracked / "a" / "tracking.json").is_file()  # MLflow as well
    offline = list((tracked / "a" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    # offline, W&B keeps the run in its binary log (uploaded later by `wandb sync`)
    [log] = offline[0].glob("run-*.wandb")
    assert log.stat().st_size > 0
