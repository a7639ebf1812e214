"""Segmentation: a class for every pixel; a named loss, per-class Dice/IoU and pixel error.

Outputs are logits (B, K, H, W): K = 1 for two classes (sigmoid: P(class 1)), K = number
of classes otherwise (softmax). Targets are masks (B, 1, H, W) holding each pixel's class
index as a float (0.0, 1.0, ...). The loss is named in the task options (see
`dlcc.segmentation.losses`: bce, dice, bce_dice, focal, or your own ``module:Name``).

Metrics, from pixel counts over the whole split (micro-averaged over images, synced
across ranks): ``dice`` and ``iou`` (the mean over classes), ``pixel_error`` (1 - pixel
accuracy, the ISBI challenge's figure), and ``dice_<class>``, ``iou_<class>`` for each
class by name (``dice_membrane``). The report adds per-image figures, the boundary F1 and
an image / mask / prediction / error panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric

from dlcc.atomic import write_text_atomic
from dlcc.segmentation.losses import build_loss
from dlcc.training.tasks.base import Task


def predicted_classes(outputs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, H, W) int64 class indices (K = 1: P(class 1) > threshold)."""
    if outputs.shape[1] == 1:
        return (torch.sigmoid(outputs[:, 0].float()) > threshold).long()
    return outputs.argmax(dim=1)


def metric_label(name: str) -> str:
    """A class name as a metric-name suffix: "cell interior" -> "cell_interior"."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "class"


class ConfusionScore(Metric):
    """A (K, K) pixel confusion matrix (rows truth, columns prediction); one score on compute.

    score: "dice" | "iou" (of `class_index`, or the mean over classes when None) or
    "pixel_error". A class with no pixels in truth or prediction scores 1.
    """

    full_state_update = False

    def __init__(
        self, score: str, num_classes: int, class_index=None, threshold=0.5, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if score not in ("dice", "iou", "pixel_error"):
            raise ValueError(f"score must be dice, iou or pixel_error, got {score!r}")
        self.score, self.num_classes = score, num_classes
        self.class_index, self.threshold = class_index, threshold
        zeros = torch.zeros((num_classes, num_classes), dtype=torch.float64)
        self.add_state("confusion", zeros, dist_reduce_fx="sum")

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        predicted = predicted_classes(outputs, self.threshold).reshape(-1)
        truth = targets[:, 0].long().reshape(-1)
        pairs = truth * self.num_classes + predicted
        counts = torch.bincount(pairs, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes).double()

    def compute(self) -> torch.Tensor:
        confusion = self.confusion
        if self.score == "pixel_error":
            return 1 - confusion.diagonal().sum() / confusion.sum().clamp(min=1)
        overlap = confusion.diagonal()
        total = confusion.sum(dim=0) + confusion.sum(dim=1)  # |P| + |T| per class
        if self.score == "dice":
            per_class = torch.where(total > 0, 2 * overlap / total.clamp(min=1), 1.0)
        else:
            union = total - overlap
            per_class = torch.where(union > 0, overlap / union.clamp(min=1), 1.0)
        if self.class_index is None:
            return per_class.mean()
        return per_class[self.class_index]


class SegmentationTask(Task):
    """Per-pixel classes. Options: loss (a name or module:Name), loss_options, threshold."""

    name = "segmentation"
    monitor = "val_dice"
    mode = "max"
    dense = True
    plots = ("segmentation_panel.png",)

    def __init__(
        self,
        classes=("background", "foreground"),
        loss: str = "bce_dice",
        loss_options: dict | None = None,
        threshold: float = 0.5,
        boundary_class: int = 0,
    ) -> None:
        self.classes = [str(name) for name in classes]
        if len(self.classes) < 2:
            raise ValueError(f"segmentation needs at least 2 classes, got {self.classes}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not 0 <= boundary_class < len(self.classes):
            raise ValueError(
                f"boundary_class must be a class index below {len(self.classes)}, "
                f"got {boundary_class}"
            )
        self.loss_spec, self.threshold = loss, threshold
        self.boundary_class = boundary_class
        self.criterion = build_loss(loss, loss_options)
        self.labels = [metric_label(name) for name in self.classes]
        per_class = [f"{score}_{label}" for score in ("dice", "iou") for label in self.labels]
        self.metric_names = ("dice", "iou", "pixel_error", *per_class)

    @property
    def num_outputs(self) -> int:
        return 1 if len(self.classes) == 2 else len(self.classes)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(outputs, targets)

    def metrics(self, sync: bool) -> dict:
        count = len(self.classes)

        def score(kind, index=None):
            return ConfusionScore(kind, count, index, self.threshold, sync_on_compute=sync)

        result = {"dice": score("dice"), "iou": score("iou"), "pixel_error": score("pixel_error")}
        for kind in ("dice", "iou"):
            for index, label in enumerate(self.labels):
                result[f"{kind}_{label}"] = score(kind, index)
        return result

    def reporter(self, data) -> SegmentationReport:
        return SegmentationReport(self.classes, self.threshold, self.boundary_class)


class SegmentationReport:
    """Per-image figures of the report split (JSON) and an image/mask/prediction panel."""

    examples = 5

    def __init__(self, classes, threshold: float, boundary_class: int = 0) -> None:
        self.classes, self.threshold = list(classes), threshold
        self.boundary_class = boundary_class
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.per_image: list[dict] = []

    def update(self, inputs, outputs, targets) -> None:
        from dlcc.segmentation.metrics import score_image

        predicted = predicted_classes(outputs, self.threshold).numpy()  # (B, H, W)
        truth = targets[:, 0].long().numpy()
        for index in range(len(predicted)):
            self.per_image.append(
                score_image(
                    predicted[index],
                    truth[index],
                    len(self.classes),
                    class_names=[metric_label(name) for name in self.classes],
                    boundary_class=self.boundary_class,
                )
            )
            if len(self.kept) < self.examples:
                picture = inputs[index].float().mean(dim=0).numpy()  # (H, W)
                self.kept.append((picture, truth[index], predicted[index]))

    def write(self, run_dir: Path) -> dict:
        mean = {}
        if self.per_image:
            mean = {
                key: float(np.mean([row[key] for row in self.per_image]))
                for key in self.per_image[0]
            }
        document = {"per_image": self.per_image, "mean": mean}
        write_text_atomic(run_dir / "per_image_scores.json", json.dumps(document, indent=1) + "\n")
        if self.kept:
            plot_panel(self.kept, run_dir / "segmentation_panel.png")
        boundary = f"boundary_f1_{metric_label(self.classes[self.boundary_class])}"
        return {boundary: mean[boundary]} if boundary in mean else {}  # the per-image mean


def plot_panel(rows, path: Path) -> None:
    """A row per image: the image, the true mask, the prediction, the errors in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlcc.plots import save_figure

    figure, axes = plt.subplots(len(rows), 4, figsize=(10, 2.6 * len(rows)), squeeze=False)
    for row, (picture, truth, predicted) in enumerate(rows):
        wrong = predicted != truth
        panels = [
            (picture, "gray", "image"),
            (truth, "gray", "mask"),
            (predicted, "gray", "prediction"),
            (picture, "gray", f"errors ({wrong.mean():.1%} of pixels)"),
        ]
        for column, (array, colours, title) in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(array, cmap=colours, interpolation="nearest")
            if column == 3:
                overlay = np.zeros((*wrong.shape, 4))
                overlay[wrong] = (1.0, 0.1, 0.1, 0.8)
                axis.imshow(overlay, interpolation="nearest")
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    save_figure(figure, path)
