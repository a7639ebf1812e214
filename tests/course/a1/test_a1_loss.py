"""Part 1: stable log-softmax and cross-entropy (`dlcc.numpy_nn.losses`), against PyTorch.

The backward tests set what forward keeps (``_saved = (probs, target, scale)``)
themselves, with a softmax computed here, so each test grades one region.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from a1_helpers import check_array, check_dtype, check_gradcheck, to_numpy, to_torch

from dlcc.numpy_nn import CrossEntropyLoss, log_softmax


def logits_and_target(batch, classes, seed, scale=3.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((batch, classes))).astype(dtype)
    target = rng.integers(0, classes, batch)
    return logits, target


def torch_softmax(logits):
    return to_numpy(torch.softmax(to_torch(logits), dim=1))


def torch_cross_entropy(logits, target, reduction="mean"):
    logits_t = to_torch(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits_t, torch.tensor(target), reduction=reduction)
    loss.backward()
    return float(loss.detach()), to_numpy(logits_t.grad)


def check_loss_value(what, value, expected, rtol=1e-7):
    assert isinstance(value, float | np.floating), (
        f"{what}: a Python float expected, got {type(value).__name__}; use float(...)"
    )
    assert math.isfinite(value), f"{what}: loss is {value}, expected {expected:.6g}"
    assert abs(value - expected) <= rtol * max(1.0, abs(expected)), (
        f"{what}: loss {value:.8g} expected {expected:.8g}"
    )


def test_log_softmax_matches_torch():
    for seed, shape in enumerate([(4, 10), (1, 3), (2, 5, 6)]):
        x = np.random.default_rng(seed).standard_normal(shape) * 4
        expected = to_numpy(torch.log_softmax(to_torch(x), dim=-1))
        check_array("log_softmax: output", log_softmax(x), expected)
    x = np.random.default_rng(9).standard_normal((3, 4, 5))
    expected = to_numpy(torch.log_softmax(to_torch(x), dim=1))
    check_array("log_softmax(x, axis=1): output", log_softmax(x, axis=1), expected)
    x32 = x.astype(np.float32)
    check_dtype("log_softmax: output", log_softmax(x32), np.float32)


def test_log_softmax_is_stable():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1.0, -1e4 + 2.0], [800.0, 800.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        try:
            out = log_softmax(x)
        except FloatingPointError as error:
            raise AssertionError(
                f"log_softmax: overflow on logits of 1e4 ({error}); subtract the maximum first"
            ) from None
    check_array(
        "log_softmax: output for logits of +-1e4",
        out,
        to_numpy(torch.log_softmax(to_torch(x), dim=-1)),
    )


def test_cross_entropy_forward_matches_torch():
    for seed, (batch, classes) in enumerate([(8, 10), (1, 2), (33, 4)]):
        logits, target = logits_and_target(batch, classes, seed)
        for reduction in ("mean", "sum"):
            value = CrossEntropyLoss(reduction=reduction).forward(logits, target)
            expected, _ = torch_cross_entropy(logits, target, reduction)
            check_loss_value(f"CrossEntropyLoss.forward (reduction={reduction!r})", value, expected)


def test_cross_entropy_forward_is_stable():
    logits, target = logits_and_target(6, 5, 3, scale=1e4)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        try:
            value = CrossEntropyLoss().forward(logits, target)
        except FloatingPointError as error:
            raise AssertionError(
                f"CrossEntropyLoss.forward: overflow on logits of 1e4 ({error}); subtract "
                "each row's maximum before np.exp"
            ) from None
    expected, _ = torch_cross_entropy(logits, target)
    check_loss_value("CrossEntropyLoss.forward on logits of 1e4", value, expected)
    logits32, target = logits_and_target(6, 5, 4, scale=50.0, dtype=np.float32)
    value = CrossEntropyLoss().forward(logits32, target)
    expected, _ = torch_cross_entropy(logits32.astype(np.float64), target)
    check_loss_value("CrossEntropyLoss.forward on float32 logits", value, expected, rtol=1e-5)


def saved_for_backward(loss_fn, logits, target, scale):
    """What CrossEntropyLoss.forward keeps, computed here."""
    loss_fn._saved = (torch_softmax(logits), target, scale)


def test_cross_entropy_backward_matches_torch():
    for seed, (batch, classes) in enumerate([(8, 10), (1, 2), (33, 4)]):
        logits, target = logits_and_target(batch, classes, seed)
        loss_fn = CrossEntropyLoss()
        saved_for_backward(loss_fn, logits, target, 1.0 / batch)
        grad = loss_fn.backward()
        _, expected = torch_cross_entropy(logits, target)
        check_array("CrossEntropyLoss.backward: dLoss/dlogits", grad, expected)


def test_cross_entropy_backward_gradcheck():
    class OracleForwardLoss:
        """Forward from PyTorch, backward from the learner's CrossEntropyLoss."""

        def __init__(self):
            self.loss_fn = CrossEntropyLoss()

        def forward(self, logits, target):
            saved_for_backward(self.loss_fn, logits, target, 1.0 / len(target))
            logits_t = to_torch(logits)
            return float(torch.nn.functional.cross_entropy(logits_t, torch.as_tensor(target)))

        def backward(self):
            return self.loss_fn.backward()

    logits, target = logits_and_target(5, 4, 11)
    check_gradcheck(OracleForwardLoss(), (logits, target), "CrossEntropyLoss.backward")
