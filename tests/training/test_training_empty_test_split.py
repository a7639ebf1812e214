"""A dataset without a test split (isbi2012_em) trains, records null test metrics, and
`dlcc eval` on its empty test split says so in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from dlcc.cli import main
from dlcc.data import registry


@pytest.fixture
def tiny_isbi(tmp_path, monkeypatch):
    """isbi2012-em/train/{image,label}: 8 pairs of 16x16 discs; no checksums (unverified)."""
    folder = tmp_path / "data" / "isbi2012-em" / "train"
    (folder / "image").mkdir(parents=True)
    (folder / "label").mkdir()
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[:16, :16]
    for index in range(8):
        centre = rng.uniform(5, 11, 2)
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < 16
        image = np.clip(0.3 + 0.4 * disc + rng.normal(0, 0.1, (16, 16)), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "image" / f"{index}.png")
        Image.fromarray((disc * 255).astype(np.uint8)).save(folder / "label" / f"{index}.png")
    files = tuple(
        registry.DatasetFile(f"train/{kind}/{index}.png", sha256=None)
        for kind in ("image", "label")
        for index in range(8)
    )
    spec = dataclasses.replace(registry.ISBI2012_EM, files=files, default_val_size=2)
    monkeypatch.setitem(registry.DATASETS, "isbi2012_em", spec)
    return tmp_path / "data"


def test_no_test_split_gives_null_test_metrics_and_a_clear_eval_error(tiny_isbi, tmp_path, capsys):
    run = tmp_path / "run"
    settings = ["--set", "data.dataset=isbi2012_em", "--set", "data.path=null"]
    settings += ["--set", f"data.data_dir={tiny_isbi}", "--set", "train.epochs=2"]
    status = main(["train", "segmentation_smoke", *settings, "--out", str(run), "--no-progress"])
    assert status == 0, capsys.readouterr().err
    assert "no test split" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_samples"] == 0 and metrics["dataset"] == "isbi2012_em"
    assert metrics["test_loss"] is None and metrics["test_dice"] is None
    assert metrics["best_epoch"] in (1, 2)
    assert not (run / "per_image_dice.json").exists()
    assert main(["eval", str(run)]) == 2
    assert "test split of isbi2012_em holds no images" in capsys.readouterr().err
    assert main(["eval", str(run), "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 2
