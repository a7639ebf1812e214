"""Plots saved as PNG into a run directory: curves, confusion matrix, misclassified grid.

Shared by the NumPy and the PyTorch training commands. Uses matplotlib's Agg backend,
so it works without a screen. Each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dlcc.atomic import atomic_write


def _save(figure, path: str | Path) -> Path:
    """Save a figure as PNG, all-or-nothing, and close it."""
    try:
        with atomic_write(path) as handle:
            figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return Path(path)


_NOT_METRICS = ("epoch", "lr", "seconds")


def plot_history(history: dict, path: str | Path) -> Path:
    """Per-epoch curves: a panel for each metric X, with train_X and val_X (loss first).

    `history` is `dlcc.runs.history.History.to_dict()`: ``{"columns": {"epoch": [...],
    "train_loss": [...], "val_loss": [...], ...}, "best_epoch": 3, ...}``. A column that
    is all None (no validation split) draws no curve; the best epoch is a dashed line.
    """
    columns = history["columns"]
    epochs = columns["epoch"]
    metrics: list[str] = []
    for name in columns:
        split, _, metric = name.partition("_")
        if split in ("train", "val") and metric and name not in _NOT_METRICS:
            if metric not in metrics and any(value is not None for value in columns[name]):
                metrics.append(metric)
    metrics.sort(key=lambda metric: metric != "loss")  # stable: loss first, then as declared
    figure, axes = plt.subplots(
        1, max(1, len(metrics)), figsize=(5 * max(1, len(metrics)), 3.8), squeeze=False
    )
    for axis, metric in zip(axes.flat, metrics, strict=False):
        for split, label in (("train", "train"), ("val", "validation")):
            values = columns.get(f"{split}_{metric}")
            if values and any(value is not None for value in values):
                points = [(e, v) for e, v in zip(epochs, values, strict=False) if v is not None]
                axis.plot(*zip(*points, strict=True), marker="o", label=label)
        if history.get("best_epoch"):
            axis.axvline(history["best_epoch"], color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    return _save(figure, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: str | Path) -> Path:
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=90)
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            color = "white" if count > threshold else "black"
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color=color)
    axis.set_title("confusion matrix (test)")
    return _save(figure, path)


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: list[str],
    path: str | Path,
    max_count: int = 36,
) -> Path:
    """A grid of up to ``max_count`` misclassified images titled "true -> predicted".

    images (N, C, H, W), any range (each is rescaled to [0, 1] for display).
    """
    wrong = np.flatnonzero(y_true != y_pred)[:max_count]
    columns = 6
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.8), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, index in zip(axes.flat, wrong, strict=False):
        image = images[index].transpose(1, 2, 0).astype(np.float64)
        image = (image - image.min()) / max(image.max() - image.min(), 1e-12)
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        axis.set_title(f"{class_names[y_true[index]]} -> {class_names[y_pred[index]]}", fontsize=8)
    if not len(wrong):
        axes.flat[0].set_title("no misclassified examples")
    return _save(figure, path)


# The public name for other modules that draw their own figures.
save_figure = _save
