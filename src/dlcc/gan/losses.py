"""GAN losses: small pure functions, one per idea.

Scores are the discriminator's raw outputs, (N,) each: logits for the standard GAN,
unbounded critic values for WGAN-GP. Every loss returns a scalar tensor, a mean over the
batch. Nothing here holds state or draws random numbers of its own: the gradient
penalty takes its interpolation weights as an argument, so a run is reproducible.

- Non-saturating GAN (Goodfellow et al. 2014, section 3): D maximises
  log D(x) + log(1 - D(G(z))); G maximises log D(G(z)) instead of minimising
  log(1 - D(G(z))), whose gradient vanishes while D rejects the fakes easily.
  With D = sigmoid(score): -log sigmoid(s) = softplus(-s), -log(1 - sigmoid(s)) = softplus(s).
- WGAN-GP (Gulrajani et al. 2017): the critic minimises E[f(fake)] - E[f(real)] plus
  lambda * E[(||grad_x f(x_hat)||_2 - 1)^2] on random interpolates x_hat between real and
  fake samples; the generator minimises -E[f(fake)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss_nonsaturating(
    real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> torch.Tensor:
    """-mean log sigmoid(real) - mean log(1 - sigmoid(fake)); scores (N,) logits -> scalar."""
    # BEGIN SOLUTION discriminator_loss_nonsaturating: -mean log D(real) - mean log(1 - D(fake))
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    # END SOLUTION
    # BEGIN PROMPT
    # real_scores (N,), fake_scores (M,): logits, D(x) = sigmoid(score). The discriminator's
    # binary cross-entropy: real samples labelled 1, fakes 0, each term a mean over its batch.
    # Write it from the logits, not log(sigmoid(s)) (which is -inf for s = -200):
    # -log sigmoid(s) = softplus(-s) and -log(1 - sigmoid(s)) = softplus(s) (F.softplus).
    # END PROMPT


def generator_loss_nonsaturating(fake_scores: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(fake): the non-saturating generator loss; (N,) logits -> scalar."""
    # BEGIN SOLUTION generator_loss_nonsaturating: -mean log D(G(z)), the non-saturating loss
    return F.softplus(-fake_scores).mean()
    # END SOLUTION
    # BEGIN PROMPT
    # fake_scores (N,): the discriminator's logits on generated samples. The generator
    # maximises log D(G(z)) (the non-saturating loss), so it minimises -mean log sigmoid(s):
    # a scalar, written with F.softplus as in the discriminator's loss.
    # END PROMPT


def interpolate(real: torch.Tensor, fake: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x_hat = w * real + (1 - w) * fake, one weight per sample: (N, ...), (N, ...), (N,)."""
    w = weights.view(-1, *([1] * (real.ndim - 1)))  # (N, 1, 1, 1)
    return w * real + (1 - w) * fake


def gradient_penalty(critic, points: torch.Tensor, labels: torch.Tensor | None = None):
    """mean over samples of (||d critic(x) / dx||_2 - 1)^2 at `points` (N, ...) -> scalar.

    `critic(points[, labels])` must score each sample from that sample alone (no batch
    norm), or the per-sample gradient is not the one the penalty means. The graph is kept
    (create_graph) so the penalty itself can be backpropagated into the critic.
    """
    # BEGIN SOLUTION gradient_penalty: mean over samples of (||d critic(x) / dx||_2 - 1)^2
    points = points.detach().requires_grad_(True)
    scores = critic(points) if labels is None else critic(points, labels)  # (N,)
    (grads,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    norms = grads.flatten(1).norm(dim=1)  # (N,)
    return ((norms - 1) ** 2).mean()
    # END SOLUTION
    # BEGIN PROMPT
    # 1. A fresh leaf: points.detach().requires_grad_(True), (N, ...).
    # 2. scores = critic(points), or critic(points, labels) when labels is given: (N,).
    # 3. One gradient for every sample at once: torch.autograd.grad(scores.sum(), points,
    #    create_graph=True) (sample n's score depends on sample n alone, so row n of the
    #    gradient of the sum is d score_n / d x_n); create_graph keeps the penalty
    #    differentiable with respect to the critic's weights.
    # 4. Each sample's L2 norm over all its other dimensions (flatten(1), then norm(dim=1)),
    #    (N,); return the mean of (norm - 1)^2, a scalar.
    # END PROMPT


def critic_loss_wgan_gp(
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    penalty: torch.Tensor,
    penalty_weight: float = 10.0,
) -> torch.Tensor:
    """mean f(fake) - mean f(real) + lambda * penalty; scores (N,), penalty scalar -> scalar."""
    # BEGIN SOLUTION critic_loss_wgan_gp: mean f(fake) - mean f(real) + penalty_weight * penalty
    return fake_scores.mean() - real_scores.mean() + penalty_weight * penalty
    # END SOLUTION
    # BEGIN PROMPT
    # real_scores (N,), fake_scores (M,): raw critic values (no sigmoid). The critic
    # minimises the negative of its estimate of the Wasserstein distance, mean f(real) -
    # mean f(fake), plus penalty_weight times the gradient penalty (a scalar, given).
    # END PROMPT


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """-mean f(fake): the WGAN generator loss; (N,) critic values -> scalar."""
    # BEGIN SOLUTION generator_loss_wasserstein: -mean f(fake)
    return -fake_scores.mean()
    # END SOLUTION
    # BEGIN PROMPT
    # fake_scores (N,): the critic's values on generated samples. The generator raises them.
    # END PROMPT


def mode_seeking_loss(
    images_a: torch.Tensor, images_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:  # fmt: skip
    """1 / (mean |G(z_a) - G(z_b)| / mean |z_a - z_b|): the mode-seeking regulariser of
    MSGAN (Mao et al. 2019), for pairs of samples of the same class (N, ...) and their noise
    (N, Z) -> scalar. A generator that maps different noise to the same image pays without
    bound; adding weight * this to the generator's loss keeps the noise in use."""
    image_gap = (images_a - images_b).abs().mean()
    noise_gap = (z_a - z_b).abs().mean()
    return 1 / (image_gap / noise_gap + eps)


LOSSES = ("nonsaturating", "wgan_gp")

__all__ = [
    "LOSSES",
    "critic_loss_wgan_gp",
    "discriminator_loss_nonsaturating",
    "generator_loss_nonsaturating",
    "generator_loss_wasserstein",
    "gradient_penalty",
    "interpolate",
]
