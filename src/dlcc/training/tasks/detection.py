"""Detection of object centres as heatmap peaks (cells in EM images; R-waves in 1-D ECG).

Every connected object of class `object_class` in a training mask is one object; its
centroid (rounded to a pixel) is the target. The targets become heatmaps (B, 1, H, W):
a Gaussian of `sigma` pixels at each centre, 1.0 exactly at the centre pixel. The model
predicts heatmap logits (B, 1, H, W); at inference the peaks of the sigmoid above a
threshold, at least `min_distance` apart, are the detections.

Loss (option `loss`): "focal", the penalty-reduced focal loss of CornerNet/CenterNet (Law
& Deng 2018; Zhou et al. 2019): the centre pixels are positives, and every other pixel a
negative whose weight (1 - target)**beta shrinks near a centre, so "almost at the centre"
is hardly punished; it is summed and divided by the number of centres. Or "bce": binary
cross-entropy of every pixel against the Gaussian itself (heatmap regression).

Metrics: precision, recall and F1 of the peaks against the true centres, matched one to
one within `tolerance` pixels (`dlcc.segmentation.detection`), pooled over the split.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric

from dlcc.atomic import write_text_atomic
from dlcc.training.tasks.base import Task


def heatmap_focal_loss(
    logits: torch.Tensor, heatmaps: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's focal loss. logits, heatmaps: (B, 1, H, W); heatmaps are 1 at centres."""
    logits, heatmaps = logits.float(), heatmaps.float()
    log_p = torch.nn.functional.logsigmoid(logits)  # log p, stable
    log_not_p = torch.nn.functional.logsigmoid(-logits)  # log (1 - p)
    p = log_p.exp()
    positive = heatmaps >= 0.999
    positive_loss = -((1 - p) ** alpha) * log_p
    negative_loss = -((1 - heatmaps) ** beta) * (p**alpha) * log_not_p
    total = torch.where(positive, positive_loss, negative_loss).sum()
    return total / positive.sum().clamp(min=1)


def centres_heatmaps(masks: np.ndarray, object_class: int, sigma: float, min_area: int):
    """(N, 1, H, W) class-index masks -> (N, 1, H, W) float32 heatmaps, one Gaussian per object."""
    from dlcc.segmentation.detection import gaussian_heatmap, object_centres

    heatmaps = np.zeros(masks.shape, dtype=np.float32)
    for index, mask in enumerate(masks[:, 0]):
        centres = np.round(object_centres(mask == object_class, min_area=min_area))
        heatmaps[index, 0] = gaussian_heatmap(mask.shape, centres, sigma=sigma)
    return heatmaps


def heatmap_peaks(heatmap: np.ndarray, min_distance: int, threshold: float):
    """(H, W) -> points (K, 2) row/col, scores (K,): `find_peaks`, the one peak picker."""
    from dlcc.segmentation.detection import find_peaks

    return find_peaks(heatmap, min_distance=min_distance, threshold=threshold)


class DetectionCounts(Metric):
    """True/false positives and misses of the peaks; precision, recall or F1 on compute."""

    full_state_update = False

    def __init__(self, score: str, task: DetectionTask, **kwargs) -> None:
        super().__init__(**kwargs)
        if score not in ("precision", "recall", "f1"):
            raise ValueError(f"score must be precision, recall or f1, got {score!r}")
        self.score, self.task = score, task
        for name in ("tp", "fp", "fn"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        tp, fp, fn = self.task.match_batch(outputs, targets)
        self.tp += tp
        self.fp += fp
        self.fn += fn

    def compute(self) -> torch.Tensor:
        tp, fp, fn = self.tp, self.fp, self.fn
        precision = tp / (tp + fp) if tp + fp > 0 else torch.tensor(float(fn == 0)).double()
        recall = tp / (tp + fn) if tp + fn > 0 else torch.ones((), dtype=torch.float64)
        if self.score == "precision":
            return precision
        if self.score == "recall":
            return recall
        both = precision + recall
        return 2 * precision * recall / both if both > 0 else torch.zeros_like(both)


class DetectionTask(Task):
    """Heatmap-and-peaks detection. Options: sigma, object_class, min_area, peak settings."""

    name = "detection"
    monitor = "val_f1"
    mode = "max"
    dense = True
    metric_names = ("f1", "precision", "recall")
    plots = ("detection_examples.png",)

    losses = ("focal", "bce")

    def __init__(
        self,
        loss: str = "focal",
        sigma: float = 3.0,
        object_class: int = 1,
        min_area: int = 20,
        tolerance: float = 5.0,
        min_distance: int = 5,
        threshold: float = 0.3,
    ) -> None:
        if sigma <= 0 or tolerance <= 0 or min_distance < 1 or not 0 < threshold < 1:
            raise ValueError(
                "expected sigma > 0, tolerance > 0, min_distance >= 1 and 0 < threshold < 1, "
                f"got sigma={sigma}, tolerance={tolerance}, min_distance={min_distance}, "
                f"threshold={threshold}"
            )
        if loss not in self.losses:
            raise ValueError(f"loss must be one of {', '.join(self.losses)}, got {loss!r}")
        self.loss_name = loss
        self.sigma, self.object_class, self.min_area = sigma, object_class, min_area
        self.tolerance, self.min_distance, self.threshold = tolerance, min_distance, threshold

    @property
    def num_outputs(self) -> int:
        return 1  # one heatmap logit per pixel

    def prepare_data(self, data):
        """Masks -> heatmaps of the object centres, for every split."""
        splits = {}
        for split in ("train", "val", "test"):
            dataset = getattr(data, split)
            masks = dataset.targets.numpy()
            heatmaps = centres_heatmaps(masks, self.object_class, self.sigma, self.min_area)
            splits[split] = type(dataset)(dataset.inputs.numpy(), heatmaps)
        return replace(data, **splits)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "bce":  # regress the heatmap itself: p -> target at every pixel
            return torch.nn.functional.binary_cross_entropy_with_logits(
                outputs.float(), targets.float()
            )
        return heatmap_focal_loss(outputs, targets)

    def peaks(self, heatmap: np.ndarray):
        """(H, W) probabilities -> (points (K, 2) row/col, scores (K,))."""
        return heatmap_peaks(heatmap, self.min_distance, self.threshold)

    def match_batch(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[int, int, int]:
        """Summed (tp, fp, fn) of a batch: peaks of the outputs against the targets' centres."""
        from dlcc.segmentation.detection import match_points

        probabilities = torch.sigmoid(outputs.detach().float()[:, 0]).cpu().numpy()
        truths = targets.detach().float()[:, 0].cpu().numpy()
        totals = np.zeros(3, dtype=np.int64)
        for heatmap, truth in zip(probabilities, truths, strict=True):
            predicted, _ = self.peaks(heatmap)
            centres, _ = heatmap_peaks(truth, 1, 0.999)  # the target's 1.0 pixels
            totals += match_points(predicted, centres, self.tolerance)
        return tuple(int(value) for value in totals)

    def metrics(self, sync: bool) -> dict:
        return {
            name: DetectionCounts(name, self, sync_on_compute=sync) for name in self.metric_names
        }

    def reporter(self, data) -> DetectionReport:
        return DetectionReport(self)


class DetectionReport:
    """Per-image precision/recall/F1 (JSON) and a few images with their peaks (PNG)."""

    examples = 4

    def __init__(self, task: DetectionTask) -> None:
        self.task = task
        self.per_image: list[dict] = []
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def update(self, inputs, outputs, targets) -> None:
        from dlcc.segmentation.detection import detection_scores

        probabilities = torch.sigmoid(outputs.float()[:, 0]).numpy()
        truths = targets[:, 0].numpy()
        for index, (heatmap, truth) in enumerate(zip(probabilities, truths, strict=True)):
            predicted, _ = self.task.peaks(heatmap)
            centres, _ = heatmap_peaks(truth, 1, 0.999)
            scores = detection_scores(predicted, centres, self.task.tolerance)
            self.per_image.append({key: float(value) for key, value in scores.items()})
            if len(self.kept) < self.examples:
                picture = inputs[index].float().mean(dim=0).numpy()
                self.kept.append((picture, centres, predicted))

    def write(self, run_dir: Path) -> dict:
        write_text_atomic(
            run_dir / "per_image_detection.json",
            json.dumps({"per_image": self.per_image}, indent=1) + "\n",
        )
        if self.kept:
            self._plot(run_dir / "detection_examples.png")
        return {}

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from dlcc.plots import save_figure

        count = len(self.kept)
        figure, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
        for axis, (picture, truth, predicted) in zip(axes[0], self.kept, strict=True):
            axis.imshow(picture, cmap="gray")
            axis.scatter(truth[:, 1], truth[:, 0], s=18, facecolors="none", edgecolors="lime")
            axis.scatter(predicted[:, 1], predicted[:, 0], s=6, c="red")
            axis.set_title("green: true centres, red: detected", fontsize=7)
            axis.axis("off")
        save_figure(figure, path)
