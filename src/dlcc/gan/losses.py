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
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def generator_loss_nonsaturating(fake_scores: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(fake): the non-saturating generator loss; (N,) logits -> scalar."""
    return F.softplus(-fake_scores).mean()


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
    points = points.detach().requires_grad_(True)
    scores = critic(points) if labels is None else critic(points, labels)  # (N,)
    (grads,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    norms = grads.flatten(1).norm(dim=1)  # (N,)
    return ((norms - 1) ** 2).mean()


def critic_loss_wgan_gp(
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    penalty: torch.Tensor,
    penalty_weight: float = 10.0,
) -> torch.Tensor:
    """mean f(fake) - mean f(real) + lambda * penalty; scores (N,), penalty scalar -> scalar."""
    return fake_scores.mean() - real_scores.mean() + penalty_weight * penalty


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """-mean f(fake): the WGAN generator loss; (N,) critic values -> scalar."""
    return -fake_scores.mean()


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
