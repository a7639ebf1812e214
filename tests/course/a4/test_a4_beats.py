"""Part 3: the beat detector's loss (`beat_heatmap_loss` in `dlcc.training.tasks.beats`)
against the weighted binary cross-entropy written here in float64, its value with
pos_weight = 1 (the plain mean BCE), its stability for large logits, and its gradient
against autograd of the formula.

When graded, the loss's backward pass runs in the learner's process, where the loss was
computed (`a4_helpers.heatmap_loss_and_gradient`); the loss and the gradient come back as data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a4_helpers import check_close, heatmap_loss_and_gradient, randn

from dlcc.training.tasks.beats import beat_heatmap_loss


# ---- the oracle ------------------------------------------------------------------------------
def expected_loss(logits: torch.Tensor, heatmaps: torch.Tensor, pos_weight: float):
    """sum(w * bce) / sum(w), w = 1 + (pos_weight - 1) * heatmaps, with the per-sample
    bce(x, y) = max(x, 0) - x y + log(1 + exp(-|x|)), in float64."""
    x, y = logits.double(), heatmaps.double()
    bce = x.clamp(min=0) - x * y + torch.log1p(torch.exp(-x.abs()))
    weights = 1 + (pos_weight - 1) * y
    return (weights * bce).sum() / weights.sum()


def heatmaps_like(shape, seed):
    """Soft targets in [0, 1] with exact 0s and 1s, as heatmaps have."""
    values = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    values[values < 0.5] = 0.0
    values[values > 0.95] = 1.0
    return values


def check_value(what, logits, heatmaps, pos_weight, rtol=1e-5):
    got = beat_heatmap_loss(logits, heatmaps, pos_weight)
    expected = expected_loss(logits, heatmaps, pos_weight)
    if not isinstance(got, torch.Tensor) or got.shape != ():
        raise AssertionError(f"beat_heatmap_loss ({what}): a scalar tensor expected, got {got!r}")
    check_close(f"beat_heatmap_loss ({what})", got, expected, rtol=rtol, atol=1e-7)


def test_beat_heatmap_loss_matches_the_formula():
    for seed, (shape, pos_weight) in enumerate(
        [((2, 1, 50), 5.0), ((1, 1, 7), 2.5), ((4, 1, 33), 20.0), ((3, 1, 1), 0.5)]
    ):
        logits = 3 * randn(*shape, seed=seed)
        check_value(
            f"{shape}, pos_weight={pos_weight}", logits, heatmaps_like(shape, seed), pos_weight
        )
    logits = randn(2, 1, 40, seed=9).float()
    check_value("float32 inputs", logits, heatmaps_like((2, 1, 40), 9).float(), 5.0)


def test_beat_heatmap_loss_without_weights_is_the_mean_bce_and_stable():
    shape = (3, 1, 64)
    logits, heatmaps = 2 * randn(*shape, seed=20), heatmaps_like(shape, 20)
    plain = F.binary_cross_entropy_with_logits(logits, heatmaps)  # float64, the mean
    got = beat_heatmap_loss(logits, heatmaps, 1.0)
    check_close(
        "beat_heatmap_loss with pos_weight=1 (the mean BCE)", got, plain, rtol=1e-5, atol=1e-7
    )
    # large logits: sigmoid saturates, the loss must not be inf or nan
    logits = torch.tensor([[[-200.0, -80.0, 0.0, 80.0, 200.0, 30.0]]], dtype=torch.float64)
    heatmaps = torch.tensor([[[0.0, 1.0, 0.5, 0.0, 1.0, 0.25]]], dtype=torch.float64)
    for pos_weight in (1.0, 5.0):
        check_value(f"logits up to +-200, pos_weight={pos_weight}", logits, heatmaps, pos_weight)


def test_beat_heatmap_loss_gradient_matches_autograd():
    for seed, (shape, pos_weight) in enumerate([((2, 1, 20), 5.0), ((1, 1, 9), 1.0)]):
        logits, heatmaps = 2 * randn(*shape, seed=seed + 30), heatmaps_like(shape, seed + 30)
        loss, gradient = heatmap_loss_and_gradient(logits, heatmaps, pos_weight)
        leaf = logits.clone().requires_grad_(True)
        expected = expected_loss(leaf, heatmaps, pos_weight)
        expected.backward()
        what = f"beat_heatmap_loss ({shape}, pos_weight={pos_weight})"
        check_close(f"{what}: the loss", loss, expected.detach(), rtol=1e-5, atol=1e-7)
        if gradient is None:
            raise AssertionError(
                f"{what}: the logits got no gradient: compute the loss with torch operations, "
                "without .detach(), .item() or NumPy"
            )
        check_close(f"{what}: d loss / d logits", gradient, leaf.grad, rtol=1e-4, atol=1e-8)
