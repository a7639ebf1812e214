"""Part 4: the pieces together. The learner's UNet, trained with the learner's Dice loss
(plus the package's cross-entropy), must overfit a few synthetic images of bright discs.

When graded, the training runs in the learner's process (`a3_helpers.overfit_discs`); the
predicted masks come back as data, and their Dice is computed here.
"""

from __future__ import annotations

import torch
from a3_helpers import discs, overfit_discs
from test_a3_unet import unet as oracle_unet


def foreground_dice(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """2 |P ∩ T| / (|P| + |T|) of the foreground (label 1), over the whole batch."""
    predicted, truth = predicted.to(torch.float64), truth.to(torch.float64)
    total = float(predicted.sum() + truth.sum())
    return 1.0 if total == 0 else float(2 * (predicted * truth).sum()) / total


def test_unet_overfits_a_few_discs():
    images, masks = discs(4, size=32, seed=0)  # (4, 1, 32, 32) each
    run = overfit_discs(images, masks, steps=100, lr=0.01)
    predicted = run["predicted"]
    shape = tuple(predicted.shape) if isinstance(predicted, torch.Tensor) else predicted
    assert shape == (4, 1, 32, 32), (
        "UNet(1, 1, depth=2, width=4) on a (4, 1, 32, 32) batch: expected (4, 1, 32, 32) "
        f"logits, got {shape}"
    )
    # The masks must be the trained U-Net's: the oracle forward pass with its weights agrees.
    state = {name: value.double() for name, value in run["state"].items()}
    expected = (oracle_unet(images.double(), state, depth=2) > 0).to(torch.int64)
    agreement = float((expected == predicted).double().mean())
    assert agreement >= 0.999, (
        f"the masks returned do not come from the trained UNet's forward pass: the oracle U-Net "
        f"with its trained weights agrees on {agreement:.1%} of the pixels"
    )
    dice = foreground_dice(predicted, masks)
    first, last = run["losses"][0], run["losses"][-1]
    assert dice >= 0.9, (
        f"UNet + soft_dice_loss: 100 Adam steps (lr 0.01) on 4 images of discs took the loss "
        f"(Dice + cross-entropy) from {first:.3f} to {last:.3f}, and the predicted masks have "
        f"a Dice of {dice:.3f} with the truth; expected >= 0.9"
    )
