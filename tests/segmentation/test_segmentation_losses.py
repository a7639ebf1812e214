"""The segmentation losses against independent formulas, and the dotted-path plug-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcc.segmentation.losses import (
    BCEDiceLoss,
    FocalLoss,
    LossError,
    build_loss,
    cross_entropy_loss,
    soft_dice_loss,
)


def dice_oracle(probabilities: np.ndarray, labels: np.ndarray, smooth: float) -> float:
    """1 - mean soft Dice over images and classes, with Python loops (N, K, H, W), (N, H, W)."""
    scores = []
    for n in range(probabilities.shape[0]):
        for k in range(probabilities.shape[1]):
            p, t = probabilities[n, k], (labels[n] == k).astype(float)
            scores.append((2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth))
    return 1 - float(np.mean(scores))


def random_case(classes: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    channels = 1 if classes == 2 else classes
    logits = torch.randn(3, channels, 5, 6, generator=generator, dtype=torch.float64)
    labels = torch.randint(classes, (3, 1, 5, 6), generator=generator).double()
    return logits, labels


@pytest.mark.parametrize("classes", [2, 4])
def test_soft_dice_matches_the_formula(classes):
    logits, labels = random_case(classes)
    if classes == 2:
        p = torch.sigmoid(logits[:, 0]).numpy()
        probabilities = np.stack([1 - p, p], axis=1)
    else:
        probabilities = torch.softmax(logits, dim=1).numpy()
    expected = dice_oracle(probabilities, labels[:, 0].numpy(), smooth=1.0)
    assert soft_dice_loss(logits, labels).item() == pytest.approx(expected, rel=1e-10)


def test_one_logit_is_the_same_as_two_logits_zero_and_z():
    logits, labels = random_case(2)
    two = torch.cat([torch.zeros_like(logits), logits], dim=1)  # softmax([0, z]) = sigmoid(z)
    expected = soft_dice_loss(two, labels).item()
    assert soft_dice_loss(logits, labels).item() == pytest.approx(expected)


@pytest.mark.parametrize("classes", [2, 3])
def test_dice_gradients_match_finite_differences(classes):
    logits, labels = random_case(classes, seed=1)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: soft_dice_loss(z, labels), (logits,))


def test_a_perfect_prediction_has_zero_dice_loss_and_an_inverted_one_nearly_one():
    labels = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    labels[..., 2:5, 2:5] = 1
    confident = (labels * 2 - 1) * 50  # logits far on the right side
    assert soft_dice_loss(confident, labels, smooth=1e-6).item() == pytest.approx(0, abs=1e-6)
    assert soft_dice_loss(-confident, labels, smooth=1e-6).item() == pytest.approx(1, abs=1e-6)


def test_cross_entropy_is_torchs_binary_and_multiclass_loss():
    logits, labels = random_case(2)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), labels)
    assert cross_entropy_loss(logits, labels).item() == pytest.approx(expected.item())
    logits, labels = random_case(3)
    expected = F.nll_loss(torch.log_softmax(logits, 1), labels[:, 0].long())
    assert cross_entropy_loss(logits, labels).item() == pytest.approx(expected.item())


def test_bce_dice_is_the_weighted_sum():
    logits, labels = random_case(2)
    loss = BCEDiceLoss(bce_weight=0.5, dice_weight=2.0)(logits, labels)
    expected = 0.5 * cross_entropy_loss(logits, labels) + 2 * soft_dice_loss(logits, labels)
    assert loss.item() == pytest.approx(expected.item())


@pytest.mark.parametrize("classes", [2, 3])
def test_focal_loss_with_gamma_zero_is_cross_entropy_and_down_weights_easy_pixels(classes):
    logits, labels = random_case(classes)
    ce = cross_entropy_loss(logits, labels).item()
    assert FocalLoss(gamma=0)(logits, labels).item() == pytest.approx(ce, rel=1e-6)
    # one pixel, p_true = 0.9: -(0.1 ** 2) * log(0.9)
    logit = torch.tensor([[[[np.log(9.0)]]]], dtype=torch.float64)
    one = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    assert FocalLoss(gamma=2)(logit, one).item() == pytest.approx(-0.01 * np.log(0.9))


def test_losses_are_named_and_a_misspelt_name_gets_a_suggestion():
    assert isinstance(build_loss("focal", {"gamma": 1.0}), FocalLoss)
    with pytest.raises(LossError, match="did you mean 'bce_dice'"):
        build_loss("bce_dise")
    with pytest.raises(LossError, match="bad loss_options"):
        build_loss("dice", {"smoth": 1})


def test_a_loss_of_your_own_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_losses_for_test.py").write_text(
        "import torch\n"
        "class Tversky(torch.nn.Module):\n"
        "    def __init__(self, alpha=0.5):\n"
        "        super().__init__()\n"
        "        self.alpha = alpha\n"
        "    def forward(self, logits, targets):\n"
        "        return self.alpha * logits.mean()\n"
        "def plain(logits, targets):\n"
        "    return logits.sum()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    logits, labels = random_case(2)
    loss = build_loss("my_losses_for_test:Tversky", {"alpha": 0.25})
    assert loss(logits, labels).item() == pytest.approx(0.25 * logits.mean().item())
    assert build_loss("my_losses_for_test:plain")(logits, labels) == logits.sum()
    with pytest.raises(LossError, match="takes no loss_options"):
        build_loss("my_losses_for_test:plain", {"x": 1})
    with pytest.raises(LossError, match=r"has no 'Tverski'.*did you mean 'Tversky'"):
        build_loss("my_losses_for_test:Tverski")
    with pytest.raises(LossError, match="cannot import module 'no_such_losses'"):
        build_loss("no_such_losses:Loss")
