"""The hidden tests of Assignment 3: the same regions as the public tests, on other cases
(other sizes, channels and depths, the residual block's projection shortcut, a multi-class
Dice gradient, another `smooth`, the Dice metric on random label maps against scikit-learn).

Every test here is hidden in the catalogue, so a release leaves this file out. Each grades
the region(s) the catalogue lists for it. Hidden tests run only in the grader's trusted
process: what they make on the learner's side is made by the public `a3_helpers`.
"""

from __future__ import annotations

import numpy as np
import test_a3_dice as dice_tests
import test_a3_unet as unet_tests
from a3_helpers import class_indices, randn
from sklearn.metrics import f1_score


# ---- Part 1 ---------------------------------------------------------------------------------
def test_unet_other_sizes_channels_and_depths():
    unet_tests.check_shapes(3, 4, depth=1, width=3, sizes=[(1, 2), (5, 3), (17, 9)])
    unet_tests.check_shapes(2, 1, depth=4, width=1, sizes=[(3, 31), (16, 17)])
    unet_tests.check_unet(2, 3, 3, 2, True, "bilinear", (1, 2, 11, 19), seed=50)
    unet_tests.check_unet(1, 1, 1, 3, False, "transpose", (2, 1, 5, 6), seed=51)


def test_conv_block_projection_shortcut():
    unet_tests.check_conv_block(3, 6, residual=True, seed=60)  # 1x1 shortcut: C_in != C_out
    unet_tests.check_conv_block(5, 2, residual=True, seed=61)


# ---- Part 2 ---------------------------------------------------------------------------------
def test_dice_loss_multiclass_gradient():
    for seed, (classes, shape) in enumerate([(3, (2, 5, 4)), (4, (1, 7, 7))]):
        batch, height, width = shape
        logits = 1.5 * randn(batch, classes, height, width, seed=seed + 70)
        targets = class_indices((batch, 1, height, width), classes, seed=seed + 80)
        dice_tests.check_loss_gradient(
            f"soft_dice_loss of {tuple(logits.shape)} logits ({classes} classes)", logits, targets
        )


def test_dice_loss_smooth_is_respected():
    logits = randn(2, 3, 4, 5, seed=90)
    targets = class_indices((2, 1, 4, 5), 3, seed=91)
    for smooth in (0.5, 1e-3, 10.0):
        dice_tests.check_loss_value(
            f"soft_dice_loss(smooth={smooth}) of (2, 3, 4, 5) logits",
            logits,
            targets,
            smooth=smooth,
        )
    binary = randn(1, 1, 6, 6, seed=92)
    dice_tests.check_loss_gradient(
        "soft_dice_loss(smooth=0.1) of (1, 1, 6, 6) logits",
        binary,
        class_indices((1, 1, 6, 6), 2, seed=93),
        smooth=0.1,
    )


# ---- Part 3 ---------------------------------------------------------------------------------
def test_dice_metric_random_maps_match_f1():
    generator = np.random.default_rng(100)
    for case in range(6):
        classes = int(generator.integers(2, 6))
        shape = tuple(int(v) for v in generator.integers(1, 30, size=2))
        truth = generator.integers(0, classes, size=shape)
        pred = np.where(generator.random(shape) < 0.7, truth, generator.integers(0, classes, shape))
        labels = list(range(classes))
        expected = f1_score(
            truth.ravel(), pred.ravel(), labels=labels, average=None, zero_division=1.0
        )
        dice_tests.check_dice(
            f"random {shape} maps of {classes} classes, case {case}", pred, truth, classes, expected
        )
