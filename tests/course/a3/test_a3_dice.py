"""Parts 2 and 3: the soft Dice loss (`soft_dice_loss` in `dlcc.segmentation.losses`), its
value and its gradients against the formula written here with torch autograd in float64,
and the Dice metric on label maps (`dice_per_class` in `dlcc.segmentation.metrics`) on
cases worked by hand.

When graded, the loss's backward pass runs in the learner's process, where the loss was
computed (`a3_helpers.dice_loss_and_gradient`); the loss and the gradient come back as data.
"""

from __future__ import annotations

import numpy as np
import torch
from a3_helpers import check_close, class_indices, dice_loss_and_gradient, randn

from dlcc.segmentation.losses import soft_dice_loss
from dlcc.segmentation.metrics import dice_per_class


# ---- the oracle ------------------------------------------------------------------------------
def expected_dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0):
    """1 - the mean over images n and classes k of
    (2 sum p t + smooth) / (sum p + sum t + smooth), sums over pixels; p from a sigmoid
    (one logit: the classes are [1 - p, p]) or a softmax, t one-hot."""
    if logits.shape[1] == 1:
        foreground = torch.sigmoid(logits)
        probabilities = torch.cat([1 - foreground, foreground], dim=1)
    else:
        probabilities = torch.softmax(logits, dim=1)
    classes = torch.arange(probabilities.shape[1], dtype=targets.dtype).view(1, -1, 1, 1)
    truth = (targets == classes).to(probabilities.dtype)  # (N, K, H, W) one-hot
    intersection = (probabilities * truth).sum(dim=(2, 3))  # (N, K)
    total = probabilities.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))  # (N, K)
    return 1 - ((2 * intersection + smooth) / (total + smooth)).mean()


def check_loss_value(what: str, logits, targets, **options) -> None:
    got = soft_dice_loss(logits, targets, **options)
    check_close(what, got, expected_dice_loss(logits, targets, **options), rtol=1e-9, atol=1e-12)


def check_loss_gradient(what: str, logits, targets, **options) -> None:
    loss, gradient = dice_loss_and_gradient(logits, targets, **options)
    leaf = logits.detach().clone().requires_grad_(True)
    expected = expected_dice_loss(leaf, targets, **options)
    expected.backward()
    check_close(f"{what}: the loss", loss, expected.detach(), rtol=1e-9, atol=1e-12)
    if gradient is None:
        raise AssertionError(
            f"{what}: the logits got no gradient: compute the loss from the probabilities with "
            "torch operations, without .detach(), .item() or NumPy"
        )
    check_close(f"{what}: d loss / d logits", gradient, leaf.grad, rtol=1e-7, atol=1e-12)


# ---- the loss --------------------------------------------------------------------------------
def test_dice_loss_binary_matches_the_formula():
    for seed, shape in enumerate([(2, 1, 5, 7), (1, 1, 16, 16), (3, 1, 1, 4)]):
        logits = 2 * randn(*shape, seed=seed)
        targets = class_indices(shape, 2, seed=seed + 10)
        check_loss_value(f"soft_dice_loss of {shape} logits (one logit: sigmoid)", logits, targets)


def test_dice_loss_multiclass_matches_the_formula():
    for seed, (batch, height, width) in enumerate([(2, 6, 5), (1, 9, 3)]):
        logits = 2 * randn(batch, 3, height, width, seed=seed)
        targets = class_indices((batch, 1, height, width), 3, seed=seed + 20)
        check_loss_value(
            f"soft_dice_loss of {tuple(logits.shape)} logits (3 classes: softmax)", logits, targets
        )
    # A class absent from an image and not predicted there scores (0 + 1) / (0 + 1) = 1.
    logits = torch.full((1, 3, 4, 4), -30.0, dtype=torch.float64)
    logits[:, 0] = 30.0
    targets = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    check_loss_value(
        "soft_dice_loss of a perfect prediction of class 0 (classes 1 and 2 absent)",
        logits,
        targets,
    )


def test_dice_loss_gradients_match_autograd():
    for seed, shape in enumerate([(2, 1, 6, 5), (1, 1, 3, 8)]):
        logits = randn(*shape, seed=seed + 30)
        targets = class_indices(shape, 2, seed=seed + 40)
        check_loss_gradient(f"soft_dice_loss of {shape} logits (one logit)", logits, targets)


# ---- the metric ------------------------------------------------------------------------------
def check_dice(what: str, pred, truth, num_classes: int, expected) -> None:
    got = dice_per_class(np.asarray(pred), np.asarray(truth), num_classes)
    expected = np.asarray(expected, dtype=np.float64)
    assert isinstance(got, np.ndarray) and got.shape == expected.shape, (
        f"dice_per_class ({what}): expected a NumPy array of shape {expected.shape}, got "
        f"{got.shape if isinstance(got, np.ndarray) else type(got).__name__}"
    )
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12), (
        f"dice_per_class ({what}): got {np.round(got, 6).tolist()}, expected "
        f"{np.round(expected, 6).tolist()}"
    )


def test_dice_metric_hand_worked():
    truth = [[0, 0, 1], [0, 1, 1], [2, 2, 1]]
    pred = [[0, 1, 1], [0, 1, 1], [2, 0, 0]]
    # class 0: |P| = 4, |T| = 3, both at (0,0), (1,0): 2*2 / 7
    # class 1: |P| = 4, |T| = 4, both at (0,2), (1,1), (1,2): 2*3 / 8
    # class 2: |P| = 1, |T| = 2, both at (2,0): 2*1 / 3
    check_dice("a 3x3 map of 3 classes", pred, truth, 3, [4 / 7, 6 / 8, 2 / 3])
    check_dice("two maps that agree", truth, truth, 3, [1.0, 1.0, 1.0])
    check_dice(
        "a class predicted nowhere",
        np.zeros((2, 2), int),
        np.eye(2, dtype=int),
        2,
        [
            2 * 2 / 6,
            0.0,
        ],
    )


def test_dice_metric_absent_class_is_one():
    truth = np.array([[0, 1], [1, 0]])
    pred = np.array([[0, 1], [0, 0]])
    # class 0: |P| = 3, |T| = 2, both 2: 4/5; class 1: |P| = 1, |T| = 2, both 1: 2/3;
    # classes 2 and 3 are in neither map: nothing missed, nothing invented, 1.0.
    check_dice("classes 2 and 3 absent from both maps", pred, truth, 4, [4 / 5, 2 / 3, 1, 1])
    check_dice(
        "one class, everywhere in both", np.zeros((3, 4), int), np.zeros((3, 4), int), 1, [1.0]
    )
