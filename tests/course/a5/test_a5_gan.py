"""Part 1: the non-saturating GAN's losses (`discriminator_loss_nonsaturating` and
`generator_loss_nonsaturating` in `dlcc.gan.losses`) against the cross-entropies written
here in float64 with F.logsigmoid, their stability for large logits, and the generator's
gradient where the discriminator rejects the fakes easily (where the saturating loss's
gradient vanishes).

When graded, the losses' backward passes run in the learner's process, where the losses were
computed (`a5_helpers.loss_and_gradients`); the losses and the gradients come back as data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a5_helpers import check_close, loss_and_gradients, randn

from dlcc.gan.losses import discriminator_loss_nonsaturating, generator_loss_nonsaturating


# ---- the oracles ---------------------------------------------------------------------------
def expected_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-mean log D(real) - mean log(1 - D(fake)), D = sigmoid, in float64:
    log(1 - sigmoid(s)) = log sigmoid(-s)."""
    return -F.logsigmoid(real.double()).mean() - F.logsigmoid(-fake.double()).mean()


def expected_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """-mean log D(G(z)) = -mean log sigmoid(s), in float64."""
    return -F.logsigmoid(fake.double()).mean()


def check_scalar(what: str, got, expected: torch.Tensor, rtol=1e-6, atol=1e-9) -> None:
    if not isinstance(got, torch.Tensor) or got.shape != ():
        described = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(f"{what}: a scalar tensor (shape ()) expected, got {described}")
    if not torch.isfinite(got):
        raise AssertionError(
            f"{what}: {float(got)} is not finite: compute log sigmoid from the logits "
            "(F.softplus or F.logsigmoid), not log(torch.sigmoid(s))"
        )
    check_close(what, got, expected, rtol=rtol, atol=atol)


# ---- the discriminator ---------------------------------------------------------------------
def test_discriminator_loss_nonsaturating_matches_the_formula():
    cases = [(8, 8, 1.0), (1, 1, 2.0), (5, 5, 4.0), (6, 3, 1.5)]  # (N real, M fake, scale)
    for seed, (n, m, scale) in enumerate(cases):
        real, fake = scale * randn(n, seed=seed), scale * randn(m, seed=seed + 10) - 1
        check_scalar(
            f"discriminator_loss_nonsaturating ({n} real, {m} fake scores)",
            discriminator_loss_nonsaturating(real, fake),
            expected_discriminator_loss(real, fake),
        )
    # a discriminator that is right about every sample has a small loss, and swapping its
    # answers makes it large: real samples are labelled 1, fakes 0
    real, fake = torch.full((4,), 3.0, dtype=torch.float64), torch.full((4,), -3.0).double()
    check_scalar(
        "discriminator_loss_nonsaturating (real scores +3, fake scores -3: D is right)",
        discriminator_loss_nonsaturating(real, fake),
        expected_discriminator_loss(real, fake),
    )
    check_scalar(
        "discriminator_loss_nonsaturating (real scores -3, fake scores +3: D is wrong)",
        discriminator_loss_nonsaturating(fake, real),
        expected_discriminator_loss(fake, real),
    )
    real, fake = randn(6, seed=20).float(), randn(6, seed=21).float()
    check_scalar(
        "discriminator_loss_nonsaturating (float32 scores)",
        discriminator_loss_nonsaturating(real, fake),
        expected_discriminator_loss(real, fake),
        rtol=1e-5,
        atol=1e-6,
    )


def test_discriminator_loss_nonsaturating_is_stable_for_large_scores():
    # sigmoid(-1000) is 0 in float64 (and sigmoid(-200) in float32): log of it is -inf
    real = torch.tensor([1000.0, -1000.0, 0.5, -800.0], dtype=torch.float64)
    fake = torch.tensor([-1000.0, 1000.0, 900.0, -0.5], dtype=torch.float64)
    check_scalar(
        "discriminator_loss_nonsaturating (scores of +-1000, float64)",
        discriminator_loss_nonsaturating(real, fake),
        expected_discriminator_loss(real, fake),
    )
    real32, fake32 = real.float() / 5, fake.float() / 5
    check_scalar(
        "discriminator_loss_nonsaturating (scores of +-200, float32)",
        discriminator_loss_nonsaturating(real32, fake32),
        expected_discriminator_loss(real32, fake32),
        rtol=1e-5,
        atol=1e-5,
    )
    loss, (grad_real, grad_fake) = loss_and_gradients(
        "discriminator_loss_nonsaturating", real, fake
    )
    leaves = [real.clone().requires_grad_(True), fake.clone().requires_grad_(True)]
    expected = expected_discriminator_loss(*leaves)
    expected.backward()
    check_scalar(
        "discriminator_loss_nonsaturating (scores of +-1000, its backward pass's loss)",
        loss,
        expected.detach(),
    )
    for what, got, leaf in (("real", grad_real, leaves[0]), ("fake", grad_fake, leaves[1])):
        name = f"discriminator_loss_nonsaturating (scores of +-1000): d loss / d {what} scores"
        if got is None:
            raise AssertionError(
                f"{name}: no gradient reached the scores: use torch operations, without "
                ".detach(), .item() or NumPy"
            )
        check_close(name, got, leaf.grad, rtol=1e-6, atol=1e-9)


# ---- the generator ---------------------------------------------------------------------------
def test_generator_loss_nonsaturating_matches_the_formula():
    for seed, (n, scale) in enumerate([(8, 1.0), (1, 3.0), (7, 0.5)]):
        fake = scale * randn(n, seed=seed + 30)
        check_scalar(
            f"generator_loss_nonsaturating ({n} scores)",
            generator_loss_nonsaturating(fake),
            expected_generator_loss(fake),
        )
    # the fakes are rejected (D(G(z)) near 0): -log D(G(z)) is large, log(1 - D(G(z))) is not
    fake = torch.tensor([-6.0, -4.0, -8.0], dtype=torch.float64)
    check_scalar(
        "generator_loss_nonsaturating (scores -4 to -8: D rejects the fakes)",
        generator_loss_nonsaturating(fake),
        expected_generator_loss(fake),
    )
    fake = torch.tensor([-1000.0, 1000.0, 3.0], dtype=torch.float64)
    check_scalar(
        "generator_loss_nonsaturating (scores of +-1000)",
        generator_loss_nonsaturating(fake),
        expected_generator_loss(fake),
    )


def test_generator_loss_nonsaturating_does_not_saturate():
    """Where D rejects the fakes (scores of -10), the non-saturating gradient is about
    -1/N per sample; the saturating loss's, mean log(1 - D(G(z))), is 1e4 times smaller."""
    for fake in (
        torch.tensor([-10.0, -9.0, -12.0, -10.5], dtype=torch.float64),
        randn(5, seed=40),
    ):
        loss, (gradient,) = loss_and_gradients("generator_loss_nonsaturating", fake)
        leaf = fake.clone().requires_grad_(True)
        expected = expected_generator_loss(leaf)
        expected.backward()
        what = f"generator_loss_nonsaturating (scores {[round(v, 2) for v in fake.tolist()]})"
        check_scalar(f"{what}: the loss", loss, expected.detach())
        if gradient is None:
            raise AssertionError(
                f"{what}: no gradient reached the scores: use torch operations, without "
                ".detach(), .item() or NumPy"
            )
        check_close(f"{what}: d loss / d scores", gradient, leaf.grad, rtol=1e-6, atol=1e-9)
