"""Segmentation losses, and the plug-in point for a loss of your own.

Every loss takes the model's logits and the masks and returns the batch's scalar loss:

    loss(logits, targets) -> scalar tensor
      logits:  (N, K, H, W): K = 1 for two classes (a sigmoid gives P(class 1)),
               K >= 2 for K classes (a softmax over the K channels)
      targets: (N, 1, H, W) float, each pixel's class index (0.0, 1.0, ...)

`class_probabilities` turns both cases into (N, K', H, W) probabilities with K' >= 2
channels (for one logit: [1 - p, p]), so Dice is written once for any number of classes.

Why Dice: with membranes 20% of an EM image, a network that calls every pixel "cell" is
80% right by pixel accuracy and by cross-entropy's standards not far off. Dice scores each
class by its overlap relative to its own size, so the small class counts as much as the
big one. Cross-entropy gives well-behaved gradients early in training; the sum of the two
(`bce_dice`) trains fast and scores well.

A recipe names its loss in the task options, by a short name or a dotted path::

    task: {name: segmentation, options: {loss: bce_dice}}
    task: {name: segmentation, options: {loss: "mylosses:TverskyLoss",
                                         loss_options: {alpha: 0.7}}}

A dotted path ``module:Name`` is imported (the current folder is on the path) and called
with ``loss_options``: a class (an nn.Module or any callable class) is instantiated with
them; a plain function is used as is (then ``loss_options`` must be empty).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.errors import DlccError
from dlcc.suggest import did_you_mean


class LossError(DlccError):
    """A loss was named or configured wrongly."""


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 (from autocast) to float32 for the sums below; float32/float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) logits -> (N, max(K, 2), H, W) class probabilities summing to 1."""
    if logits.shape[1] == 1:
        foreground = torch.sigmoid(logits)
        return torch.cat([1 - foreground, foreground], dim=1)
    return torch.softmax(logits, dim=1)


def one_hot_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, 1, H, W) class indices -> (N, num_classes, H, W) float one-hot."""
    indices = targets[:, 0].long()  # (N, H, W)
    return F.one_hot(indices, num_classes).permute(0, 3, 1, 2).to(targets.dtype)


def soft_dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """1 - the soft Dice of each class and image, averaged over both.

    Soft Dice of class k in image n: (2 sum(p * t) + smooth) / (sum(p) + sum(t) + smooth),
    sums over pixels, with p the predicted probability of k and t the one-hot target.
    `smooth` keeps an empty class (no pixels of it, none predicted) at a Dice of 1.
    """
    probabilities = class_probabilities(full_precision(logits))  # (N, K', H, W)
    # BEGIN SOLUTION dice_loss: per-image, per-class soft Dice; 1 minus its mean
    truth = one_hot_targets(targets, probabilities.shape[1])  # (N, K', H, W)
    truth = truth.to(probabilities.dtype)
    intersection = (probabilities * truth).sum(dim=(2, 3))  # (N, K')
    total = probabilities.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))  # (N, K')
    dice = (2 * intersection + smooth) / (total + smooth)
    return 1 - dice.mean()
    # END SOLUTION
    # BEGIN PROMPT
    # Make the targets one-hot (one_hot_targets), then per image n and class k:
    # Dice = (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth), sums over H and W.
    # Return 1 - the mean of Dice over images and classes: a scalar tensor.
    # END PROMPT


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy: binary (with logits) for K = 1, else over K classes."""
    logits = full_precision(logits)
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
    return F.cross_entropy(logits, targets[:, 0].long())


class BCELoss(nn.Module):
    """Cross-entropy per pixel, averaged (binary or multi-class, see the module doc)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, targets)


class DiceLoss(nn.Module):
    """1 - soft Dice, averaged over classes and images (`soft_dice_loss`)."""

    def __init__(self, smooth: float = 1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return soft_dice_loss(logits, targets, self.smooth)


class BCEDiceLoss(nn.Module):
    """bce_weight * cross-entropy + dice_weight * (1 - soft Dice)."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0):
        super().__init__()
        if bce_weight < 0 or dice_weight < 0 or bce_weight + dice_weight == 0:
            raise LossError(
                f"bce_dice: the weights must be >= 0 and not both 0, got bce_weight="
                f"{bce_weight}, dice_weight={dice_weight}"
            )
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.bce_weight * cross_entropy_loss(logits, targets)
        return loss + self.dice_weight * soft_dice_loss(logits, targets, self.smooth)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_true)**gamma.

    Pixels the model already gets right (p_true near 1) count little, so training
    concentrates on the hard ones (here: thin and faint membranes). `alpha`, when given,
    is the weight of class 1 in the binary case (class 0 gets 1 - alpha).
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = None):
        super().__init__()
        if gamma < 0:
            raise LossError(f"focal: gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0 < alpha < 1:
            raise LossError(f"focal: alpha must be in (0, 1) or null, got {alpha}")
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.log(class_probabilities(full_precision(logits)).clamp(min=1e-7))
        indices = targets[:, :1].long()  # (N, 1, H, W)
        log_p_true = log_probabilities.gather(1, indices)  # (N, 1, H, W)
        loss = -((1 - log_p_true.exp()) ** self.gamma) * log_p_true
        if self.alpha is not None:
            loss = loss * torch.where(indices == 1, self.alpha, 1 - self.alpha)
        return loss.mean()


LOSSES: dict[str, type[nn.Module]] = {
    "bce": BCELoss,
    "dice": DiceLoss,
    "bce_dice": BCEDiceLoss,
    "focal": FocalLoss,
}


def build_loss(spec: str, options: dict | None = None) -> Callable:
    """The loss a recipe names: a key of LOSSES or a dotted path ``module:Name``."""
    options = dict(options or {})
    if not isinstance(spec, str) or not spec:
        raise LossError(f"loss: expected a name or module:Name, received {spec!r}")
    if ":" not in spec:
        if spec not in LOSSES:
            raise LossError(
                f"unknown loss {spec!r}{did_you_mean(spec, LOSSES)}; expected one of "
                f"{', '.join(LOSSES)}, or your own as a dotted path module:Name"
            )
        return _instantiate(LOSSES[spec], options, spec)
    return _instantiate(_import_object(spec), options, spec)


def _import_object(spec: str):
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `dlcc train` run from the folder with mylosses.py
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise LossError(
            f"loss {spec!r}: cannot import module {module_name!r} ({error}). Put "
            f"{module_name.replace('.', '/')}.py in the folder you run dlcc from, or on "
            "PYTHONPATH"
        ) from None
    names = [name for name in vars(module) if not name.startswith("_")]
    if not attribute or not hasattr(module, attribute):
        raise LossError(
            f"loss {spec!r}: module {module_name!r} has no {attribute!r}"
            f"{did_you_mean(attribute, names)}"
        )
    return getattr(module, attribute)


def _instantiate(target, options: dict, spec: str) -> Callable:
    if inspect.isclass(target):
        try:
            loss = target(**options)
        except TypeError as error:
            raise LossError(f"loss {spec!r}: bad loss_options {options}: {error}") from None
    elif callable(target):
        if options:
            raise LossError(
                f"loss {spec!r} is a function: it takes no loss_options, got {options}; "
                "make it a class to configure it"
            )
        loss = target
    else:
        raise LossError(f"loss {spec!r}: expected a class or function, got {type(target)}")
    if not callable(loss):
        raise LossError(f"loss {spec!r}: an instance of it is not callable (no forward?)")
    return loss
