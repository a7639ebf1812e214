"""What is explained: a score per image, computed from the model's outputs.

A target is a callable ``outputs -> (B,) scores``. It is fixed once, from the model's
prediction on the unchanged images, and then applied to the outputs of noisy (SmoothGrad)
or occluded copies, so that every method explains the same number.

- Classification, outputs (B, K) logits: the logit of class `target`, default each image's
  predicted class (`ClassScore`).
- Segmentation, outputs (B, K, H, W) logits: the logits of class `target` summed over a
  region (`RegionScore`): by default the pixels predicted as that class, or a given box.
  One output channel (binary, sigmoid) is class 1's logit z; class 0's is -z.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dlcc.errors import DlccError

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # model outputs -> (B,) scores


class TargetError(DlccError):
    """A target class or region that the model's outputs do not have."""


@dataclass
class ClassScore:
    """outputs (B, K) -> (B,): outputs[b, classes[b]]."""

    classes: torch.Tensor  # (B,) int64

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.gather(1, self.classes.to(outputs.device).view(-1, 1)).squeeze(1)


@dataclass
class RegionScore:
    """outputs (B, K, H, W) -> (B,): sign * sum over the region of channel `channel`."""

    channel: int
    region: torch.Tensor  # (B, 1, H, W) float 0/1
    sign: float = 1.0

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        logits = outputs[:, self.channel : self.channel + 1]  # (B, 1, H, W)
        return self.sign * (logits * self.region.to(outputs.device)).sum(dim=(1, 2, 3))


def class_target(outputs: torch.Tensor, target: int | None = None) -> ClassScore:
    """The score of class `target` (default: the predicted class) from (B, K) logits."""
    if outputs.ndim != 2:
        raise TargetError(
            f"a classification target needs (B, K) outputs, received {tuple(outputs.shape)}"
        )
    classes = outputs.shape[1]
    if target is None:
        return ClassScore(outputs.argmax(dim=1))
    if not 0 <= target < classes:
        raise TargetError(
            f"--target: expected a class index in 0..{classes - 1}, received {target}"
        )
    return ClassScore(torch.full((len(outputs),), int(target), dtype=torch.long))


def region_target(
    outputs: torch.Tensor,
    target: int | None = None,
    box: Sequence[int] | None = None,
) -> RegionScore:
    """The summed logit of class `target` over a region, from (B, K, H, W) logits.

    target: the class (default 1: the foreground of a binary model; for K >= 2 channels,
        the class most often predicted apart from 0, else 0).
    box: (row0, col0, row1, col1), half-open, in output pixels; default: the pixels
        predicted as `target`. A region with no pixels explains nothing: TargetError.
    """
    if outputs.ndim != 4:
        raise TargetError(
            f"a segmentation target needs (B, K, H, W) outputs, received {tuple(outputs.shape)}"
        )
    batch, channels, height, width = outputs.shape
    binary = channels == 1
    if binary:
        predicted = (outputs[:, 0] > 0).long()  # (B, H, W) class 1 where sigmoid > 0.5
    else:
        predicted = outputs.argmax(dim=1)  # (B, H, W)
    if target is None:
        if binary:
            target = 1
        else:
            counts = torch.bincount(predicted.flatten(), minlength=channels)
            counts[0] = 0
            target = int(counts.argmax()) if counts.sum() > 0 else 0
    classes = 2 if binary else channels
    if not 0 <= target < classes:
        raise TargetError(
            f"--target: expected a class index in 0..{classes - 1}, received {target}"
        )
    if box is not None:
        row0, col0, row1, col1 = (int(value) for value in box)
        if not (0 <= row0 < row1 <= height and 0 <= col0 < col1 <= width):
            raise TargetError(
                f"--box: expected row0,col0,row1,col1 with 0 <= row0 < row1 <= {height} and "
                f"0 <= col0 < col1 <= {width}, received {tuple(box)}"
            )
        region = torch.zeros(batch, 1, height, width)
        region[:, :, row0:row1, col0:col1] = 1.0
    else:
        region = (predicted == target).float().unsqueeze(1).cpu()  # (B, 1, H, W)
        if region.sum() == 0:
            raise TargetError(
                f"no pixel is predicted as class {target}, so there is no region to explain; "
                "pass --target for another class, or --box row0,col0,row1,col1"
            )
    channel = 0 if binary else target
    sign = -1.0 if binary and target == 0 else 1.0
    return RegionScore(channel, region, sign)


def resolve_target(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    target: int | None = None,
    box: Sequence[int] | None = None,
) -> ScoreFn:
    """The score to explain for `inputs` (B, C, H, W): by the shape of the model's outputs,
    a class score ((B, K) outputs) or a region score ((B, K, H, W) outputs)."""
    with torch.no_grad():
        outputs = model(inputs).float()
    if outputs.ndim == 2:
        if box is not None:
            raise TargetError("--box is for segmentation models; a classifier has no regions")
        return class_target(outputs, target)
    return region_target(outputs, target, box)
