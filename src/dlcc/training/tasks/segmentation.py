"""Binary segmentation: a mask per image; soft-Dice + BCE loss, Dice and IoU metrics.

Outputs are logits (B, 1, H, W); targets are masks (B, 1, H, W) of 0.0 and 1.0. Dice and
IoU are computed over all pixels of the split at once (micro-averaged), with the
prediction thresholded at probability `threshold`; their sums are synced across ranks.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from dlcc.atomic import write_text_atomic
from dlcc.training.tasks.base import Task


def soft_dice(probabilities: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0):
    """Differentiable Dice 2|P∩T| / (|P| + |T|) of each image, averaged over the batch.

    probabilities, targets: (B, 1, H, W). Per image, so a small object counts as much as a
    large one, and a batch split across processes gives the same mean (equal shards).
    """
    dims = tuple(range(1, probabilities.ndim))
    intersection = (probabilities * targets).sum(dim=dims)  # (B,)
    total = probabilities.sum(dim=dims) + targets.sum(dim=dims)  # (B,)
    return ((2 * intersection + smooth) / (total + smooth)).mean()


class OverlapCounts(Metric):
    """Pixel counts of the thresholded prediction against the mask; Dice or IoU on compute."""

    full_state_update = False

    def __init__(self, score: str, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        if score not in ("dice", "iou"):
            raise ValueError(f"score must be dice or iou, got {score!r}")
        self.score, self.threshold = score, threshold
        for name in ("intersection", "predicted", "actual"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        predicted = torch.sigmoid(outputs.float()) > self.threshold  # (B, 1, H, W) bool
        actual = targets > 0.5
        self.intersection += (predicted & actual).sum()
        self.predicted += predicted.sum()
        self.actual += actual.sum()

    def compute(self) -> torch.Tensor:
        total = self.predicted + self.actual
        if total == 0:  # nothing predicted, nothing there: a perfect score
            return torch.ones((), dtype=torch.float64)
        if self.score == "dice":
            return 2 * self.intersection / total
        return self.intersection / (total - self.intersection)


class SegmentationTask(Task):
    """Binary masks; `dice_weight` and `bce_weight` mix the two loss terms."""

    name = "segmentation"
    monitor = "val_dice"
    mode = "max"
    metric_names = ("dice", "iou")
    plots = ("segmentation_examples.png",)

    def __init__(
        self, dice_weight: float = 1.0, bce_weight: float = 1.0, threshold: float = 0.5
    ) -> None:
        if dice_weight < 0 or bce_weight < 0 or dice_weight + bce_weight == 0:
            raise ValueError(
                f"segmentation loss weights must be >= 0 and not both 0, got dice_weight="
                f"{dice_weight}, bce_weight={bce_weight}"
            )
        self.dice_weight, self.bce_weight, self.threshold = dice_weight, bce_weight, threshold

    @property
    def num_outputs(self) -> int:
        return 1  # one foreground logit per pixel

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs = outputs.float()  # (B, 1, H, W) logits; the sums below want fp32
        bce = F.binary_cross_entropy_with_logits(outputs, targets)
        dice = soft_dice(torch.sigmoid(outputs), targets)
        return self.bce_weight * bce + self.dice_weight * (1 - dice)

    def metrics(self, sync: bool) -> dict:
        return {
            score: OverlapCounts(score, self.threshold, sync_on_compute=sync)
            for score in ("dice", "iou")
        }

    def reporter(self, data) -> SegmentationReport:
        return SegmentationReport(self.threshold)


class SegmentationReport:
    """Per-image Dice on the test split (JSON) and a few overlays (PNG)."""

    examples = 6

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.per_image: list[float] = []

    def update(self, inputs, outputs, targets) -> None:
        predicted = (torch.sigmoid(outputs) > self.threshold).float()  # (B, 1, H, W)
        overlap = (predicted * targets).sum(dim=(1, 2, 3))
        total = predicted.sum(dim=(1, 2, 3)) + targets.sum(dim=(1, 2, 3))
        dice = torch.where(total > 0, 2 * overlap / total.clamp(min=1), torch.ones_like(total))
        self.per_image += dice.tolist()
        for index in range(min(len(inputs), self.examples - len(self.kept))):
            self.kept.append((inputs[index], targets[index, 0], predicted[index, 0]))

    def write(self, run_dir: Path) -> dict:
        write_text_atomic(
            run_dir / "per_image_dice.json", json.dumps({"dice": self.per_image}) + "\n"
        )
        self._plot(run_dir / "segmentation_examples.png")
        return {}

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from dlcc.plots import save_figure

        count = max(1, len(self.kept))
        figure, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.6), squeeze=False)
        for column, (image, mask, predicted) in enumerate(self.kept):
            picture = image.float().mean(dim=0).numpy()  # (H, W): channels averaged
            for row, (overlay, title) in enumerate([(mask, "mask"), (predicted, "predicted")]):
                axis = axes[row, column]
                axis.imshow(picture, cmap="gray")
                axis.imshow(overlay.numpy(), cmap="autumn", alpha=0.35 * overlay.numpy())
                axis.set_title(title, fontsize=8)
                axis.axis("off")
        save_figure(figure, path)
