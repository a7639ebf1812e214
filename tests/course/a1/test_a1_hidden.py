"""The hidden tests of Assignment 1: the same regions as the public tests, on other cases
(random shapes, odd strides and paddings, ties, other reductions and dtypes).

Every test here is hidden in the catalogue, so a release leaves this file out. Each grades
one region, with the public tests' checks.
"""

from __future__ import annotations

import numpy as np
import test_a1_conv as conv_tests
import test_a1_linear as linear_tests
import test_a1_loss as loss_tests
import test_a1_pool as pool_tests
import test_a1_sgd as sgd_tests
from a1_helpers import check_array, check_dtype

from dlcc.numpy_nn import CrossEntropyLoss

# (N, C_in, H, W, C_out, kernel, stride, padding, bias)
CONV_CASES = [
    (2, 3, 7, 9, 4, (3, 2), (2, 1), (1, 2), False),  # rectangular everything, no bias
    (1, 2, 6, 5, 3, 5, 3, 2, True),
    (3, 5, 4, 4, 6, 4, 1, 0, True),  # a kernel as large as the image
    (2, 2, 9, 8, 2, 2, 2, 0, True),
]


def test_linear_forward_random_shapes():
    rng = np.random.default_rng(10)
    for seed in range(10):
        batch, in_features, out_features = (int(v) for v in rng.integers(1, 40, 3))
        linear_tests.check_forward(batch, in_features, out_features, bool(seed % 2), seed=seed)


def test_linear_backward_random_shapes():
    rng = np.random.default_rng(11)
    for seed in range(10):
        batch, in_features, out_features = (int(v) for v in rng.integers(1, 40, 3))
        linear_tests.check_backward(batch, in_features, out_features, bool(seed % 2), seed=seed)


def test_cross_entropy_backward_sum_and_float32():
    logits, target = loss_tests.logits_and_target(7, 6, 12)
    loss_fn = CrossEntropyLoss(reduction="sum")
    loss_tests.saved_for_backward(loss_fn, logits, target, 1.0)
    _, expected = loss_tests.torch_cross_entropy(logits, target, "sum")
    check_array("CrossEntropyLoss.backward (reduction='sum')", loss_fn.backward(), expected)
    logits32 = logits.astype(np.float32)
    loss_fn = CrossEntropyLoss()
    loss_tests.saved_for_backward(loss_fn, logits32, target, 1.0 / len(target))
    check_dtype("CrossEntropyLoss.backward: dLoss/dlogits", loss_fn.backward(), np.float32)


def test_sgd_momentum_with_weight_decay_matches_torch():
    sgd_tests.run_both(steps=4, seed=5, lr=0.1, momentum=0.9, weight_decay=0.01)
    sgd_tests.run_both(steps=2, seed=6, lr=0.1, momentum=0.0, weight_decay=0.1)


def test_conv_forward_odd_shapes():
    for seed, case in enumerate(CONV_CASES):
        conv_tests.check_forward(case, seed + 20)


def test_conv_backward_odd_shapes():
    for seed, case in enumerate(CONV_CASES):
        conv_tests.check_backward(case, seed + 20)


def test_maxpool_backward_ties_and_padding():
    # Padding (with -inf, as in PyTorch) and overlapping windows.
    pool_tests.check_backward((2, 2, 7, 6, 3, 2, 1), 1, np.ascontiguousarray)
    # Ties, as after a ReLU: the gradient goes to the first maximum in row-major order.
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((2, 3, 6, 6)), 0.0)
    x[0, 0, :2, :2] = 0.5  # a whole window of equal values
    for case in [(2, 3, 6, 6, 2, None, 0), (2, 3, 6, 6, 3, 1, 1)]:
        pool_tests.check_backward(case, 3, np.ascontiguousarray, x=x)
