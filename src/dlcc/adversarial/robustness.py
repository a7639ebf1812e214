"""Accuracy under attack as a function of epsilon, and the two pictures of it.

    table = accuracy_vs_eps(pixel_model, (pixels, labels), [0, 0.05, 0.1], fgsm_spec)
    # [{"attack": "fgsm", "eps": 0.0, "accuracy": 0.99, "samples": 1000}, ...]

`pixel_model` takes pixels in [0, 1] (`dlcc.adversarial.PixelModel` around a trained run's
model) and is used as it is: put it in eval mode first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dlcc.adversarial.attacks import AttackSpec, attack


def _batches(data, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """(pixels, labels) tensors cut into batches, or a loader's batches as they come."""
    if isinstance(data, tuple | list) and len(data) == 2 and torch.is_tensor(data[0]):
        pixels, labels = data
        for start in range(0, len(labels), batch_size):
            yield pixels[start : start + batch_size], labels[start : start + batch_size]
    else:
        yield from data


def accuracy_vs_eps(
    model: torch.nn.Module,
    data,
    eps_list: Sequence[float],
    spec: AttackSpec,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> list[dict]:
    """The model's accuracy on `data` attacked by `spec` at each eps of `eps_list`.

    data: a (pixels (N, C, H, W) in [0, 1], labels (N,)) pair of tensors, or any iterable of
    such batches (a DataLoader). Returns one row per eps, in order:
    ``{"attack": name, "eps": eps, "steps": steps, "alpha": step size, "accuracy": a,
    "samples": N}``; at eps 0 every attack leaves the pixels as they are (clean accuracy).
    """
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for eps in eps_list:
        eps_spec = replace(spec, eps=float(eps))
        correct = seen = 0
        for pixels, labels in _batches(data, batch_size):
            pixels, labels = pixels.to(device), labels.to(device)
            adversarial = attack(model, pixels, labels, eps_spec, generator)
            with torch.no_grad():
                correct += int((model(adversarial).argmax(dim=1) == labels).sum())
            seen += len(labels)
        rows.append(
            {
                "attack": spec.name,
                "eps": float(eps),
                "steps": 1 if spec.name != "pgd" else spec.steps,
                "alpha": eps_spec.step_size,
                "accuracy": correct / seen if seen else None,
                "samples": seen,
            }
        )
    return rows


def attack_label(row: dict) -> str:
    """ "FGSM" or "PGD-20": how a curve is named in the legend."""
    return "PGD-{}".format(row["steps"]) if row["attack"] == "pgd" else row["attack"].upper()


def plot_robustness(tables: Sequence[list[dict]], path: str | Path, title: str = "") -> Path:
    """One accuracy-vs-eps curve per table (an attack each), saved as a PNG atomically."""
    from dlcc.plots import _save, plt

    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for table in tables:
        if not table:
            continue
        axis.plot(
            [row["eps"] for row in table],
            [row["accuracy"] for row in table],
            marker="o",
            label=attack_label(table[0]),
        )
    axis.set_xlabel("epsilon (L-infinity, pixel units)")
    axis.set_ylabel("accuracy")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title, fontsize=9)
    return _save(figure, path)


def plot_adversarial_examples(
    originals: np.ndarray,
    adversarials: np.ndarray,
    clean_predictions: Sequence[int],
    adversarial_predictions: Sequence[int],
    labels: Sequence[int],
    classes: Sequence[str],
    eps: float,
    path: str | Path,
) -> Path:
    """Columns of (original, adversarial, amplified difference) with the predicted labels.

    originals, adversarials: (N, C, H, W) pixels in [0, 1]. A wrong prediction is titled in
    red. The difference is scaled so that +-eps spans the grey range.
    """
    from dlcc.plots import _save, plt

    count = len(originals)
    figure, axes = plt.subplots(3, max(count, 1), figsize=(1.6 * max(count, 1), 5.2), squeeze=False)

    def show(axis, image):  # (C, H, W) -> a picture
        if image.shape[0] == 1:
            axis.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        else:
            axis.imshow(np.clip(np.moveaxis(image[:3], 0, -1), 0, 1))
        axis.set_xticks([])
        axis.set_yticks([])

    for index in range(count):
        label = int(labels[index])
        show(axes[0, index], originals[index])
        for row, prediction in ((0, clean_predictions[index]), (1, adversarial_predictions[index])):
            axes[row, index].set_title(
                str(classes[int(prediction)]),
                color="black" if int(prediction) == label else "red",
                fontsize=9,
            )
        show(axes[1, index], adversarials[index])
        difference = adversarials[index] - originals[index]
        scale = 2 * eps if eps > 0 else 1.0
        show(axes[2, index], np.clip(difference / scale + 0.5, 0, 1))
    axes[0, 0].set_ylabel("original", fontsize=9)
    axes[1, 0].set_ylabel(f"adversarial\neps={eps:g}", fontsize=9)
    axes[2, 0].set_ylabel("difference", fontsize=9)
    return _save(figure, path)
