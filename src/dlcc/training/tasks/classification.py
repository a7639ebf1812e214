"""Classification: one label per sample; cross-entropy, accuracy, a confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlcc.atomic import write_text_atomic
from dlcc.training.tasks.base import Task


class ClassificationTask(Task):
    """Outputs (B, num_classes) logits; targets (B,) int64 class indices."""

    name = "classification"
    monitor = "val_accuracy"
    mode = "max"
    metric_names = ("accuracy",)
    plots = ("confusion_matrix.png", "misclassified.png")

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        adversarial: dict | None = None,
        pixel_mean: list[float] | None = None,
        pixel_std: list[float] | None = None,
    ) -> None:
        """`adversarial` (``task.options.adversarial`` in a recipe), e.g. ``{attack: fgsm_rs,
        eps: 0.3}``: train on batches attacked in pixel space (`dlcc.adversarial`), which
        needs the inputs' standardisation, `pixel_mean` and `pixel_std` (per channel; the
        data's, filled in by `build_task`). The train_* history columns are then those of
        the attacked batches; validation and test stay clean."""
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.adversarial = None
        if adversarial is not None:
            from dlcc.adversarial.attacks import attack_spec

            if pixel_mean is None or pixel_std is None:
                raise ValueError(
                    "adversarial training needs pixel_mean and pixel_std (the inputs' "
                    "standardisation), which build_task fills in from the data"
                )
            self.adversarial = attack_spec(adversarial)
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std

    def adversary(self, model):
        """None, or the adversarial-training step for `model` (`AdversarialTraining`)."""
        if self.adversarial is None:
            return None
        from dlcc.adversarial.attacks import AdversarialTraining

        return AdversarialTraining(model, self.pixel_mean, self.pixel_std, self.adversarial)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's mean cross-entropy, with label smoothing (training)."""
        # BEGIN SOLUTION ClassificationTask.loss: mean cross-entropy with label smoothing
        return F.cross_entropy(outputs, targets, label_smoothing=self.label_smoothing)
        # END SOLUTION
        # BEGIN PROMPT
        # outputs are logits (B, num_classes), targets class indices (B,). Return the batch's
        # mean cross-entropy, with self.label_smoothing (F.cross_entropy has an argument).
        # END PROMPT

    def eval_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Validation and test loss: plain cross-entropy, comparable across smoothing."""
        return F.cross_entropy(outputs, targets)

    def metrics(self, sync: bool) -> dict:
        from torchmetrics.classification import MulticlassAccuracy

        return {
            "accuracy": MulticlassAccuracy(
                self.num_classes, average="micro", sync_on_compute=sync, validate_args=False
            )
        }

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def reporter(self, data) -> ClassificationReport:
        return ClassificationReport(list(data.classes), data.mean, data.std)


class ClassificationReport:
    """Confusion matrix (JSON and PNG) and a grid of misclassified test images."""

    def __init__(self, classes: list[str], mean, std) -> None:
        self.classes, self.mean, self.std = classes, mean, std
        self.inputs, self.predictions, self.labels = [], [], []

    def update(self, inputs, outputs, targets) -> None:
        self.inputs.append(inputs)
        self.predictions.append(outputs.argmax(dim=1))
        self.labels.append(targets)

    def write(self, run_dir: Path) -> dict:
        from dlcc import plots

        labels = torch.cat(self.labels).numpy()
        predictions = torch.cat(self.predictions).numpy()
        matrix = plots.confusion_matrix(labels, predictions, len(self.classes))
        write_text_atomic(
            run_dir / "confusion_matrix.json",
            json.dumps({"classes": self.classes, "matrix": matrix.tolist()}) + "\n",
        )
        plots.plot_confusion_matrix(matrix, self.classes, run_dir / "confusion_matrix.png")
        images = torch.cat(self.inputs).float().numpy()
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        plots.plot_misclassified(
            images * std + mean, labels, predictions, self.classes, run_dir / "misclassified.png"
        )
        return {}
