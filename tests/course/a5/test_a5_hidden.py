"""Assignment 5's hidden tests: the same functions on other cases (the GAN losses on random
sizes and scales, the gradient penalty on random critics, FGSM on random networks and
budgets, saliency on random networks and shapes). Not in the release.
"""

from __future__ import annotations

import numpy as np
import torch
from a5_helpers import network_and_state, penalty_and_gradients, randn, run_attack, run_explain
from test_a5_attacks import check_adversarial, oracle_fgsm, uniform
from test_a5_gan import check_scalar, expected_discriminator_loss, expected_generator_loss
from test_a5_saliency import check_map, oracle_gradients
from test_a5_wgan import check_penalty, expected_critic_loss, linear_critic_state

from dlcc.gan.losses import (
    critic_loss_wgan_gp,
    discriminator_loss_nonsaturating,
    generator_loss_nonsaturating,
    generator_loss_wasserstein,
)


def test_nonsaturating_losses_random_sizes_and_scales():
    rng = np.random.default_rng(500)
    for index in range(6):
        n, m = (int(v) for v in rng.integers(1, 20, 2))
        scale = float(rng.uniform(0.1, 30))
        real, fake = scale * randn(n, seed=510 + index), scale * randn(m, seed=530 + index)
        if index % 2:
            real, fake = real.float(), fake.float()
        tolerance = (1e-5, 1e-5) if index % 2 else (1e-9, 1e-12)
        what = f"random case {index}: {n} real, {m} fake scores, scale {scale:.3g}"
        check_scalar(
            f"discriminator_loss_nonsaturating ({what})",
            discriminator_loss_nonsaturating(real, fake),
            expected_discriminator_loss(real, fake),
            *tolerance,
        )
        check_scalar(
            f"generator_loss_nonsaturating ({what})",
            generator_loss_nonsaturating(fake),
            expected_generator_loss(fake),
            *tolerance,
        )


def test_wasserstein_losses_random_sizes():
    rng = np.random.default_rng(600)
    for index in range(6):
        n, m = (int(v) for v in rng.integers(1, 20, 2))
        weight = float(rng.uniform(0, 20))
        real, fake = 5 * randn(n, seed=610 + index), 5 * randn(m, seed=630 + index) - 3
        penalty = randn(seed=650 + index).abs()
        what = f"random case {index}: {n} real, {m} fake scores, penalty_weight {weight:.3g}"
        check_scalar(
            f"critic_loss_wgan_gp ({what})",
            critic_loss_wgan_gp(real, fake, penalty, weight),
            expected_critic_loss(real, fake, penalty, weight),
            1e-9,
            1e-12,
        )
        check_scalar(
            f"generator_loss_wasserstein ({what})",
            generator_loss_wasserstein(fake),
            -fake.mean(),
            1e-9,
            1e-12,
        )


def test_gradient_penalty_random_critics_and_shapes():
    rng = np.random.default_rng(700)
    for index in range(4):
        shape = tuple(int(v) for v in rng.integers(1, 5, 4))
        norm = float(rng.uniform(0.1, 4))
        state = linear_critic_state(shape[1:], norm, seed=710 + index)
        result = penalty_and_gradients(
            "linear_critic", {"shape": shape[1:]}, state, randn(*shape, seed=720 + index)
        )
        check_penalty(
            f"gradient_penalty (random linear critic {index}: ||w|| = {norm:.3g}, points {shape})",
            result,
            torch.tensor((norm - 1) ** 2, dtype=torch.float64),
        )
    for index in range(3):
        shape = (int(rng.integers(2, 7)), int(rng.integers(2, 9)))
        classes = int(rng.integers(0, 3))
        sizes = {"shape": shape[1:], "hidden": 3, "classes": classes}
        critic, state = network_and_state("tanh_critic", sizes, 740 + index, "float64", 3.0)
        points = randn(*shape, seed=750 + index)
        labels = torch.arange(shape[0]) % classes if classes else None
        leaf = points.clone().requires_grad_(True)
        scores = critic(leaf) if labels is None else critic(leaf, labels)
        (gradient,) = torch.autograd.grad(scores.sum(), leaf)
        expected = ((gradient.norm(dim=1) - 1) ** 2).mean()
        result = penalty_and_gradients("tanh_critic", sizes, state, points, labels)
        check_penalty(
            f"gradient_penalty (random tanh critic {index}, points {shape})", result, expected
        )


def test_fgsm_random_networks_and_budgets():
    rng = np.random.default_rng(800)
    for index in range(4):
        sizes = {
            "channels": int(rng.integers(1, 4)),
            "size": int(rng.integers(3, 7)),
            "classes": int(rng.integers(2, 5)),
        }
        eps, batch = float(rng.uniform(0.005, 0.4)), int(rng.integers(1, 6))
        network, state = network_and_state("tiny_conv", sizes, 810 + index, scale=2.0)
        shape = (batch, sizes["channels"], sizes["size"], sizes["size"])
        pixels = uniform(shape, 0.0, 1.0, seed=820 + index)
        labels = torch.arange(batch) % sizes["classes"]
        expected, gradient = oracle_fgsm(network, pixels, labels, eps)
        result = run_attack("tiny_conv", sizes, state, pixels, labels, eps)
        clear = gradient.abs() > 1e-5 * gradient.abs().max()
        check_adversarial(
            f"fgsm (random network {index}: {sizes}, batch {batch}, eps={eps:.3g})",
            result,
            pixels,
            eps,
            torch.where(clear, expected, result["adversarial"]),
        )


def test_saliency_random_networks_and_shapes():
    rng = np.random.default_rng(900)
    for index in range(4):
        sizes = {
            "channels": int(rng.integers(1, 4)),
            "size": int(rng.integers(3, 7)),
            "classes": int(rng.integers(2, 5)),
        }
        batch = int(rng.integers(1, 6))
        network, state = network_and_state("tiny_conv", sizes, 910 + index, scale=2.0)
        inputs = randn(batch, sizes["channels"], sizes["size"], sizes["size"], seed=920 + index)
        inputs = inputs.float()
        classes = torch.as_tensor(rng.integers(0, sizes["classes"], batch))
        result = run_explain("saliency", "tiny_conv", sizes, state, inputs, classes)
        check_map(
            f"saliency (random network {index}: {sizes}, batch {batch})",
            result["maps"],
            oracle_gradients(network, inputs, classes).abs().amax(dim=1),
        )
