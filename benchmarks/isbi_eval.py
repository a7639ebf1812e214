"""The ISBI 2012 figures of trained runs, measured the way a user gets them: the validation
images' PNG files through ``dlcc segment predict`` and ``dlcc detect predict``.

Segmentation: the masks the command writes (255 = cell, 0 = membrane) against the label
PNGs: pixel error, Dice and IoU per class, the membranes' boundary F1, per image and their
mean, plus the pixel error pooled over the images. With --tta also the flip-averaged masks.

Detection (with --detect DET_RUN): the centres the command writes against the centroids of
the cell interiors of the label masks (components of at least 20 px, as the task's
targets), matched one to one within 5 px; beside the classical baseline on the same
images: the distance transform of the segmentation run's thresholded cell probability,
then its peaks (`dlcc.segmentation.detection.distance_transform_peaks`).

    DLCC_DATA_DIR=../shared/datasets python benchmarks/isbi_eval.py runs/isbi \\
        [--detect runs/cells] [--tta] [--json benchmarks/results/isbi_eval.json]

The validation images are found as the run's own split (its config and seed), matched to
their files by content, so the figures are of images the run never trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dlcc.cli import main as dlcc
from dlcc.runs import read_run
from dlcc.segmentation.detection import (
    detection_scores_many,
    distance_transform_peaks,
    object_centres,
)
from dlcc.segmentation.metrics import pixel_error, score_image
from dlcc.segmentation.predictor import load_predictor
from dlcc.training.config import config_from_dict
from dlcc.training.data import load_data

TOLERANCE = 5.0


def validation_files(run_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label) paths of the run's validation images, found by their content."""
    config = config_from_dict(read_run(run_dir).settings)
    data = load_data(config.data, config.train.seed)
    root = Path(config.data.data_dir or os.environ["DLCC_DATA_DIR"]) / "isbi2012-em/train"
    mean, std = np.float32(data.mean[0]), np.float32(data.std[0])
    by_content = {}
    for path in sorted((root / "image").glob("*.png")):
        pixels = np.asarray(Image.open(path), dtype=np.float32) / np.float32(255)
        by_content[path] = (pixels - mean) / std
    found = []
    for image in data.val.inputs.numpy()[:, 0]:
        matches = [p for p, x in by_content.items() if np.allclose(x, image, atol=1e-5)]
        if len(matches) != 1:
            raise SystemExit(f"could not match a validation image to one file ({matches})")
        found.append((matches[0], root / "label" / matches[0].name))
    return found


def save_figure(predicted: np.ndarray, truth: np.ndarray, name: str, path: Path) -> None:
    """The predicted mask and, beside it, its errors: red = membrane predicted where the
    label has cell, blue = membrane missed. (The EM image itself is not drawn: the figure
    is the model's output, not the dataset.)"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    errors = np.ones((*truth.shape, 3))
    errors[(predicted == 0) & (truth == 1)] = (0.85, 0.1, 0.1)
    errors[(predicted == 1) & (truth == 0)] = (0.1, 0.3, 0.9)
    figure, axes = plt.subplots(1, 2, figsize=(7, 3.6))
    axes[0].imshow(predicted, cmap="gray", interpolation="nearest")
    axes[0].set_title(f"predicted mask, validation image {name}", fontsize=8)
    axes[1].imshow(errors, interpolation="nearest")
    wrong = float((predicted != truth).mean())
    axes[1].set_title(
        f"errors: {wrong:.1%} of pixels (red: extra, blue: missed membrane)", fontsize=8
    )
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def segmentation_figures(run_dir: Path, files, extra: list[str], figure=None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = ["segment", "predict", str(run_dir), *[str(i) for i, _ in files], "--out", out]
        if dlcc([*argv, *extra, "--no-progress"]) != 0:
            raise SystemExit("dlcc segment predict failed")
        per_image, predicted_all, truth_all = [], [], []
        for image, label in files:
            predicted = (np.asarray(Image.open(Path(out) / f"{image.stem}.png")) == 255).astype(int)
            truth = (np.asarray(Image.open(label)) > 127).astype(int)
            row = score_image(predicted, truth, 2, class_names=["membrane", "cell"])
            per_image.append({"image": image.name, **row})
            if figure is not None and not predicted_all:
                save_figure(predicted, truth, image.name, figure)
            predicted_all.append(predicted)
            truth_all.append(truth)
    keys = [key for key in per_image[0] if key != "image"]
    mean = {key: float(np.mean([row[key] for row in per_image])) for key in keys}
    pooled = pixel_error(np.concatenate(predicted_all), np.concatenate(truth_all))
    return {"mean": mean, "pooled_pixel_error": float(pooled), "per_image": per_image}


def true_centres(label: Path) -> np.ndarray:
    return object_centres(np.asarray(Image.open(label)) > 127, min_area=20)


def detection_figures(det_run: Path, seg_run: Path, files) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = ["detect", "predict", str(det_run), *[str(i) for i, _ in files], "--out", out]
        if dlcc([*argv, "--no-progress"]) != 0:
            raise SystemExit("dlcc detect predict failed")
        detected = []
        for image, label in files:
            with open(Path(out) / f"{image.stem}.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            points = np.array([[float(r["y"]), float(r["x"])] for r in rows]).reshape(-1, 2)
            detected.append((points, true_centres(label)))
    predictor = load_predictor(seg_run)
    baseline = []
    for image, label in files:
        cell = predictor.predict(np.asarray(Image.open(image)))[0]  # P(cell), (H, W)
        points, _ = distance_transform_peaks(cell, threshold=0.5, min_distance=5)
        baseline.append((points, true_centres(label)))

    def pooled(pairs):
        scores = detection_scores_many(pairs, tolerance=TOLERANCE)
        return {key: scores[key] for key in ("precision", "recall", "f1", "tp", "fp", "fn")}

    return {
        "tolerance_px": TOLERANCE,
        "heatmap_unet": pooled(detected),
        "baseline": pooled(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a trained isbi_unet run")
    parser.add_argument("--detect", type=Path, help="a trained isbi_detect run")
    parser.add_argument("--tta", action="store_true", help="also score flip-averaged masks")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--figure", type=Path, help="a PNG of the first image's mask and errors")
    args = parser.parse_args()
    files = validation_files(args.run_dir)
    result = {
        "machine": platform.processor() or platform.machine(),
        "run_dir": str(args.run_dir),
        "validation_images": [image.name for image, _ in files],
        "segmentation": segmentation_figures(args.run_dir, files, [], args.figure),
    }
    if args.tta:
        result["segmentation_tta"] = segmentation_figures(args.run_dir, files, ["--tta"])
    if args.detect:
        result["detection"] = detection_figures(args.detect, args.run_dir, files)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
