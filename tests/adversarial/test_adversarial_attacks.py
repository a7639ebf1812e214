"""FGSM and PGD against oracles: the hand-computed gradient sign of a linear model, the
eps-ball and the image range, PGD's one-step special case, and PGD's strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adversarial_helpers import accuracy, digits_pixels, train_mlp
from torch import nn

from dlcc.adversarial import (
    AttackError,
    AttackSpec,
    PixelModel,
    accuracy_vs_eps,
    attack,
    attack_spec,
    fgsm,
    pgd,
)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("trial", range(5))
def test_fgsm_on_a_linear_model_is_eps_times_the_sign_of_the_hand_gradient(trial):
    rng = np.random.default_rng(trial)
    batch, channels, height, width = rng.integers(1, 5), rng.integers(1, 4), 4, rng.integers(3, 6)
    classes = int(rng.integers(2, 6))
    features = channels * height * width
    weight = rng.normal(size=(classes, features))
    bias = rng.normal(size=classes)
    mean = rng.uniform(0.2, 0.6, channels)
    std = rng.uniform(0.1, 0.5, channels)
    linear = nn.Linear(features, classes)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    model = PixelModel(nn.Sequential(nn.Flatten(), linear), mean.tolist(), std.tolist())
    # interior pixels: x +- eps stays in [0, 1], so no clipping is involved
    pixels = rng.uniform(0.3, 0.7, (batch, channels, height, width))
    labels = rng.integers(0, classes, batch)
    eps = float(rng.uniform(0.01, 0.25))

    # by hand: z = W ((x - m) / s) + b; dCE/dx = (W^T (softmax(z) - onehot(y))) / s
    standardised = (pixels - mean[None, :, None, None]) / std[None, :, None, None]
    logits = standardised.reshape(batch, -1) @ weight.T + bias
    onehot = np.eye(classes)[labels]
    gradient = ((softmax(logits) - onehot) @ weight).reshape(pixels.shape)
    gradient /= std[None, :, None, None]
    expected = pixels + eps * np.sign(gradient)

    adversarial = fgsm(
        model, torch.tensor(pixels, dtype=torch.float32), torch.tensor(labels), eps
    ).numpy()
    clear = np.abs(gradient) > 1e-6  # a sign that float32 cannot get wrong
    np.testing.assert_allclose(adversarial[clear], expected[clear], atol=1e-5)
    assert clear.mean() > 0.9


def _small_conv(seed: int, channels: int = 3, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, classes),
    ).eval()


@pytest.mark.parametrize("name", ["fgsm", "fgsm_rs", "pgd"])
def test_every_attack_stays_in_the_eps_ball_and_in_the_image_range(name):
    generator = torch.Generator().manual_seed(1)
    model = _small_conv(0)
    # a third of the pixels at 0, a third at 1: clipping to [0, 1] must act
    pixels = torch.randint(0, 3, (6, 3, 8, 8), generator=generator).float() / 2
    labels = torch.randint(0, 4, (6,), generator=generator)
    eps = 0.2
    spec = AttackSpec(name, eps=eps, alpha=0.15, steps=7)  # steps past the ball: projection
    adversarial = attack(model, pixels, labels, spec, generator)
    assert adversarial.shape == pixels.shape
    assert (adversarial - pixels).abs().max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    # and it did move: the interior pixels reach the ball's edge somewhere
    interior = pixels == 0.5
    assert (adversarial - pixels)[interior].abs().max() > eps * 0.99


def test_pgd_with_one_step_of_eps_from_the_image_is_fgsm():
    generator = torch.Generator().manual_seed(2)
    model = _small_conv(3)
    pixels = torch.rand(5, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (5,), generator=generator)
    one_step = pgd(model, pixels, labels, eps=0.1, alpha=0.1, steps=1, random_start=False)
    assert torch.equal(one_step, fgsm(model, pixels, labels, 0.1))
    # and a random start makes it another attack (the comparison above can fail)
    started = pgd(model, pixels, labels, 0.1, 0.1, 1, random_start=True, generator=generator)
    assert not torch.equal(started, one_step)


def test_the_attacks_leave_no_gradient_on_the_parameters_and_the_mode_as_it_was():
    model = _small_conv(4).train()
    pixels, labels = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    pgd(model, pixels, labels, 0.1, 0.05, 3)
    assert model.training
    assert all(parameter.grad is None for parameter in model.parameters())


@pytest.fixture(scope="module")
def trained():
    """An MLP fitted on the digits' training split, and the test split (pixels, labels)."""
    model = train_mlp(*digits_pixels("train"))
    return model, digits_pixels("test")


def test_pgd_is_at_least_as_strong_as_fgsm_on_a_trained_model(trained):
    model, (pixels, labels) = trained
    clean = accuracy(model, pixels, labels)
    assert clean > 0.9
    generator = torch.Generator().manual_seed(0)
    for eps in (0.05, 0.1, 0.2):
        fgsm_accuracy = accuracy(model, fgsm(model, pixels, labels, eps), labels)
        spec = AttackSpec("pgd", eps=eps, steps=10)
        pgd_accuracy = accuracy(model, attack(model, pixels, labels, spec, generator), labels)
        assert pgd_accuracy <= fgsm_accuracy + 1e-9, eps
        assert fgsm_accuracy < clean
    assert pgd_accuracy < 0.2  # eps 0.2 on 8x8 digits: nearly everything is fooled


def test_accuracy_vs_eps_starts_at_the_clean_accuracy_and_falls(trained):
    model, (pixels, labels) = trained
    table = accuracy_vs_eps(model, (pixels, labels), [0.0, 0.05, 0.2], AttackSpec("pgd", steps=5))
    assert [row["eps"] for row in table] == [0.0, 0.05, 0.2]
    assert table[0]["accuracy"] == pytest.approx(accuracy(model, pixels, labels))
    assert table[0]["samples"] == len(labels)
    assert table[0]["accuracy"] > table[1]["accuracy"] > table[2]["accuracy"]
    # a loader's batches give the same table as the arrays (FGSM: nothing random)
    batches = [(pixels[i : i + 50], labels[i : i + 50]) for i in range(0, len(labels), 50)]
    spec = AttackSpec("fgsm")
    assert accuracy_vs_eps(model, batches, [0.1], spec) == accuracy_vs_eps(
        model, (pixels, labels), [0.1], spec, batch_size=7
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attack": "fgsm_rs", "eps": 1.5}, r"eps: expected a number in \[0, 1\]"),
        ({"attack": "pgd", "eps": -0.1}, r"eps: expected a number in \[0, 1\]"),
        ({"attack": "cw", "eps": 0.1}, r"expected one of fgsm, fgsm_rs, pgd, received 'cw'"),
        ({"eps": 0.1, "stepz": 3}, r"unknown 'stepz'"),
        ({"attack": "pgd"}, r"eps is required"),
        ({"attack": "pgd", "eps": 0.1, "steps": 0}, r"steps: expected an integer >= 1"),
        ({"attack": "pgd", "eps": 0.1, "alpha": 0}, r"alpha .* expected a number > 0"),
    ],
)
def test_bad_attack_settings_are_refused_in_one_line(options, message):
    with pytest.raises(AttackError, match=message):
        attack_spec(options)


def test_default_step_sizes_follow_the_papers():
    assert AttackSpec("fgsm", eps=0.3).step_size == pytest.approx(0.3)
    assert AttackSpec("fgsm_rs", eps=0.3).step_size == pytest.approx(0.375)  # Wong et al.
    assert AttackSpec("pgd", eps=0.3, steps=20).step_size == pytest.approx(2.5 * 0.3 / 20)
