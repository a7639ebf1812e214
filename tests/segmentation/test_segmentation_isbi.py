"""The shipped ISBI recipes end to end, on the shared EM images (skips when absent):
train the smoke variants, check the run directory, evaluate the validation split."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlcc.cli import main

SHARED = Path(os.environ.get("DLCC_DATA_DIR") or Path(__file__).parents[3] / "shared/datasets")

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(
        not (SHARED / "isbi2012-em/train/image/0.png").is_file(),
        reason=f"the ISBI 2012 EM images are not in {SHARED} (set DLCC_DATA_DIR)",
    ),
]


@pytest.fixture(autouse=True)
def shared_data_dir(monkeypatch):
    monkeypatch.setenv("DLCC_DATA_DIR", str(SHARED))


def test_the_unet_smoke_recipe_reports_on_the_validation_images(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "isbi_unet_smoke", "--out", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["report_split"] == "val" and metrics["test_samples"] == 0
    assert metrics["test_dice"] is None  # unlabelled test images: no test figures
    assert 0 <= metrics["val_boundary_f1_membrane"] <= 1
    scores = json.loads((run / "per_image_scores.json").read_text())
    assert len(scores["per_image"]) == 5  # the 5 validation images
    assert {"pixel_error", "dice_membrane", "dice_cell", "boundary_f1_membrane"} <= set(
        scores["mean"]
    )
    assert (run / "segmentation_panel.png").stat().st_size > 10_000
    history = json.loads((run / "history.json").read_text())["columns"]
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "val"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["samples"] == 5
    assert evaluated["pixel_error"] == pytest.approx(history["val_pixel_error"][-1])
    assert main(["eval", str(run)]) == 2  # the test split is empty: refused, with a hint
    assert "--split" in capsys.readouterr().err


def test_the_detection_smoke_recipe_trains_on_heatmaps_of_cell_centres(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "isbi_detect_smoke", "--out", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "detection" and metrics["monitor"] == "val_f1"
    per_image = json.loads((run / "per_image_detection.json").read_text())["per_image"]
    assert len(per_image) == 5
    # every validation image has dozens of cells: the targets were made from the masks
    assert all(row["tp"] + row["fn"] > 20 for row in per_image)
    assert (run / "detection_examples.png").is_file()
