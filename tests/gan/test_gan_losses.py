"""The GAN losses against hand-worked values and autograd oracles."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlcc.gan import losses


def test_nonsaturating_losses_at_zero_logits_are_log_two():
    zeros = torch.zeros(5)
    # D(x) = 0.5 everywhere: -log 0.5 for the real and for the fake half
    assert losses.discriminator_loss_nonsaturating(zeros, zeros).item() == pytest.approx(
        2 * math.log(2)
    )
    assert losses.generator_loss_nonsaturating(zeros).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("seed", range(5))
def test_nonsaturating_losses_match_binary_cross_entropy(seed):
    generator = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(7, generator=generator) * 4, torch.randn(9, generator=generator) * 4
    real64, fake64 = real.double(), fake.double()
    expected_d = F.binary_cross_entropy(
        torch.sigmoid(real64), torch.ones(7, dtype=torch.float64)
    ) + F.binary_cross_entropy(torch.sigmoid(fake64), torch.zeros(9, dtype=torch.float64))
    expected_g = -torch.log(torch.sigmoid(fake64)).mean()
    assert losses.discriminator_loss_nonsaturating(real64, fake64).item() == pytest.approx(
        expected_d.item(), rel=1e-9
    )
    assert losses.generator_loss_nonsaturating(fake64).item() == pytest.approx(
        expected_g.item(), rel=1e-9
    )


def test_the_nonsaturating_generator_loss_keeps_its_gradient_where_the_minimax_one_vanishes():
    # D confidently rejects the fake (logit -10): d/ds log(1 - sigmoid(s)) ~ 4.5e-5, while
    # d/ds -log sigmoid(s) ~ -1.
    score = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
    losses.generator_loss_nonsaturating(score).backward()
    assert score.grad.item() == pytest.approx(-torch.sigmoid(torch.tensor(10.0)).item())
    assert abs(score.grad.item()) > 0.99


def test_wasserstein_losses_by_hand():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0, 2.0])
    penalty = torch.tensor(0.25)
    # mean fake 0 - mean real 2 + 10 * 0.25
    assert losses.critic_loss_wgan_gp(real, fake, penalty, 10.0).item() == pytest.approx(0.5)
    assert losses.generator_loss_wasserstein(fake).item() == pytest.approx(0.0)
    assert losses.generator_loss_wasserstein(real).item() == pytest.approx(-2.0)


def test_interpolate_weights_one_and_zero_give_the_endpoints():
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    mixed = losses.interpolate(real, fake, torch.tensor([1.0, 0.0, 0.25]))
    torch.testing.assert_close(mixed[0], real[0])
    torch.testing.assert_close(mixed[1], fake[1])
    torch.testing.assert_close(mixed[2], 0.25 * real[2] + 0.75 * fake[2])


@pytest.mark.parametrize("norm", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_minus_one_squared(norm):
    # f(x) = w . x + b has gradient w at every x: the penalty is (||w|| - 1)^2 wherever it is taken
    generator = torch.Generator().manual_seed(1)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1)).double()
    with torch.no_grad():
        weight = torch.randn(1, 16, generator=generator, dtype=torch.float64)
        critic[1].weight.copy_(weight / weight.norm() * norm)

    def score(x):
        return critic(x).squeeze(1)

    points = torch.randn(6, 1, 4, 4, generator=generator, dtype=torch.float64)
    penalty = losses.gradient_penalty(score, points)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-12, abs=1e-15)


def test_gradient_penalty_matches_a_sample_by_sample_oracle_and_reaches_the_critic():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(8, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)
    ).double()

    def critic(x, labels):
        return net(x).squeeze(1) * (1 + labels.double())

    points = torch.randn(4, 2, 2, 2, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0])
    penalty = losses.gradient_penalty(critic, points, labels)
    expected = 0.0
    for index in range(4):  # one sample at a time: no batch interaction possible
        point = points[index : index + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point, labels[index : index + 1]).sum(), point)
        expected += (grad.norm() - 1) ** 2 / 4
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    penalty.backward()  # create_graph: the penalty trains the critic's weights
    weights = [p for p in net.parameters() if p.ndim > 1]  # (dx f does not involve the biases)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_mode_seeking_loss_by_hand_and_unbounded_for_collapse():
    z_a, z_b = torch.zeros(4, 3), torch.full((4, 3), 2.0)  # noise gap 2
    images_a, images_b = torch.zeros(4, 1, 2, 2), torch.full((4, 1, 2, 2), 0.5)  # gap 0.5
    assert losses.mode_seeking_loss(images_a, images_b, z_a, z_b).item() == pytest.approx(
        1 / (0.25 + 1e-5)
    )
    collapsed = losses.mode_seeking_loss(images_a, images_a.clone(), z_a, z_b)
    assert collapsed.item() == pytest.approx(1e5)  # 1 / eps: different noise, one image
    # its gradient pushes the two images apart
    images_b = images_b.clone().requires_grad_(True)
    losses.mode_seeking_loss(images_a, images_b, z_a, z_b).backward()
    assert (images_b.grad < 0).all()  # raising b (away from a = 0) lowers the loss
