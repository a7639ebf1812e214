"""Part 2: WGAN-GP (`critic_loss_wgan_gp`, `generator_loss_wasserstein` and
`gradient_penalty` in `dlcc.gan.losses`): the losses against their formulas in float64; the
gradient penalty on a linear critic, whose gradient is its weight vector for every sample (so
the penalty is (||w||_2 - 1)^2 in closed form, and its gradient with respect to w is
2 (||w|| - 1) w / ||w||), and on a nonlinear critic against torch.autograd.grad taken sample
by sample in the test process.

When graded, the critic is built in the learner's process from a state_dict sent as data, and
the penalty's backward pass runs there (`a5_helpers.penalty_and_gradients`); the penalty and
the critic's gradients come back as data. The oracles use a twin of the critic built here.
"""

from __future__ import annotations

import torch
from a5_helpers import (
    check_close,
    loss_and_gradients,
    network_and_state,
    penalty_and_gradients,
    randn,
)

from dlcc.gan.losses import critic_loss_wgan_gp, generator_loss_wasserstein

F64 = torch.float64


# ---- the losses ------------------------------------------------------------------------------
def expected_critic_loss(real, fake, penalty, weight):
    return fake.double().mean() - real.double().mean() + weight * penalty.double()


def check_scalar(what, got, expected, rtol=1e-9, atol=1e-12):
    if not isinstance(got, torch.Tensor) or got.shape != ():
        described = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(f"{what}: a scalar tensor (shape ()) expected, got {described}")
    check_close(what, got, expected, rtol=rtol, atol=atol)


def test_critic_loss_wgan_gp_matches_the_formula():
    cases = [(8, 8, 0.3, 10.0), (1, 1, 2.0, 1.0), (6, 4, 0.0, 10.0), (5, 5, 1.5, 0.25)]
    for seed, (n, m, penalty, weight) in enumerate(cases):
        real, fake = 3 * randn(n, seed=seed) + 1, 3 * randn(m, seed=seed + 10)
        penalty = torch.tensor(penalty, dtype=F64)
        check_scalar(
            f"critic_loss_wgan_gp ({n} real, {m} fake scores, penalty {float(penalty):g}, "
            f"penalty_weight={weight:g})",
            critic_loss_wgan_gp(real, fake, penalty, weight),
            expected_critic_loss(real, fake, penalty, weight),
        )
    real, fake, penalty = randn(4, seed=20), randn(4, seed=21), torch.tensor(0.7, dtype=F64)
    check_scalar(
        "critic_loss_wgan_gp with the default penalty_weight (10, Gulrajani et al.)",
        critic_loss_wgan_gp(real, fake, penalty),
        expected_critic_loss(real, fake, penalty, 10.0),
    )
    # the critic is trained by gradient descent on this loss: it must raise the real scores
    loss, (grad_real, grad_fake, grad_penalty) = loss_and_gradients(
        "critic_loss_wgan_gp", real, fake, penalty, penalty_weight=2.0
    )
    check_scalar(
        "critic_loss_wgan_gp (penalty_weight=2)",
        loss,
        expected_critic_loss(real, fake, penalty, 2.0),
    )
    for what, got, expected in (
        ("real scores", grad_real, torch.full((4,), -1 / 4, dtype=F64)),
        ("fake scores", grad_fake, torch.full((4,), 1 / 4, dtype=F64)),
        ("penalty", grad_penalty, torch.tensor(2.0, dtype=F64)),
    ):
        name = f"critic_loss_wgan_gp (penalty_weight=2): d loss / d {what}"
        if got is None:
            raise AssertionError(f"{name}: no gradient reached the {what}")
        check_close(name, got, expected, rtol=1e-9, atol=1e-12)


def test_generator_loss_wasserstein_matches_the_formula():
    for seed, n in enumerate([8, 1, 5]):
        fake = 4 * randn(n, seed=seed + 30) - 2
        check_scalar(
            f"generator_loss_wasserstein ({n} scores)",
            generator_loss_wasserstein(fake),
            -fake.mean(),
        )
    fake = torch.tensor([-2.0, 0.5, 3.5])
    loss, (gradient,) = loss_and_gradients("generator_loss_wasserstein", fake)
    check_scalar("generator_loss_wasserstein (float32)", loss, -fake.mean(), 1e-6, 1e-7)
    if gradient is None:
        raise AssertionError("generator_loss_wasserstein: no gradient reached the scores")
    check_close(
        "generator_loss_wasserstein: d loss / d scores (the generator raises its scores)",
        gradient,
        torch.full((3,), -1 / 3),
        rtol=1e-6,
        atol=1e-8,
    )


# ---- the gradient penalty ----------------------------------------------------------------------
def linear_critic_state(shape, norm, seed, classes=0):
    """A LinearCritic's state: a weight vector of L2 norm `norm` (random direction), a bias,
    and per-class offsets."""
    weight = randn(*shape, seed=seed).flatten()
    state = {
        "weight": norm * weight / weight.norm(),
        "bias": randn(seed=seed + 1),
    }
    if classes:
        state["offset"] = randn(classes, seed=seed + 2)
    return state


def check_penalty(what, result, expected_penalty):
    if result["points_changed"]:
        raise AssertionError(f"{what}: the points were changed in place: leave them as they are")
    check_scalar(f"{what}: the penalty", result["penalty"], expected_penalty, 1e-9, 1e-12)


def check_critic_gradients(what, result, expected: dict):
    if not result["differentiable"]:
        raise AssertionError(
            f"{what}: the penalty does not depend on the critic's weights: take the input "
            "gradient with torch.autograd.grad(..., create_graph=True), so that the critic "
            "can be trained on the penalty"
        )
    for name, value in expected.items():
        got = result["grads"][name]
        if got is None and not value.any():
            continue  # the penalty does not depend on it (a bias): None is a zero gradient
        if got is None:
            raise AssertionError(f"{what}: the critic's {name!r} got no gradient")
        check_close(f"{what}: d penalty / d critic.{name}", got, value, rtol=1e-7, atol=1e-10)


def test_gradient_penalty_of_a_linear_critic():
    """(||w|| - 1)^2 for every sample, so the mean is the same: a penalty on ||g||^2, on the
    L1 norm, on the norm over the whole batch, or one-sided, gives another value."""
    cases = [  # (points' shape, ||w||)
        ((5, 1, 4, 4), 2.5),
        ((3, 6), 0.4),
        ((4, 3, 2, 2), 1.0),
        ((1, 2, 3, 3), 3.0),
        ((6, 10), 1.2),
    ]
    for seed, (shape, norm) in enumerate(cases):
        sizes = {"shape": shape[1:]}
        state = linear_critic_state(shape[1:], norm, seed=10 * seed)
        points = randn(*shape, seed=10 * seed + 5)
        result = penalty_and_gradients("linear_critic", sizes, state, points)
        check_penalty(
            f"gradient_penalty (linear critic with ||w|| = {norm:g}, points {shape})",
            result,
            torch.tensor((norm - 1.0) ** 2, dtype=F64),
        )


def test_gradient_penalty_matches_autograd_per_sample():
    """A nonlinear critic (each sample its own gradient), without and with labels: the penalty
    against the mean of (||d f(x_n) / d x_n|| - 1)^2, each gradient taken alone here."""
    cases = [  # (points' shape, classes, weight scale)
        ((6, 1, 4, 4), 0, 3.0),
        ((4, 2, 3, 3), 3, 2.0),
        ((1, 5), 0, 4.0),
        ((5, 8), 2, 1.0),
    ]
    for seed, (shape, classes, scale) in enumerate(cases):
        sizes = {"shape": shape[1:], "hidden": 5, "classes": classes}
        critic, state = network_and_state("tanh_critic", sizes, 40 + seed, "float64", scale)
        points = randn(*shape, seed=50 + seed)
        labels = torch.arange(shape[0]) % classes if classes else None
        norms = []
        for n in range(shape[0]):
            point = points[n : n + 1].clone().requires_grad_(True)
            label = None if labels is None else labels[n : n + 1]
            score = critic(point) if label is None else critic(point, label)
            (gradient,) = torch.autograd.grad(score.sum(), point)
            norms.append(gradient.flatten().norm())
        expected = ((torch.stack(norms) - 1) ** 2).mean()
        result = penalty_and_gradients("tanh_critic", sizes, state, points, labels)
        check_penalty(
            f"gradient_penalty (tanh critic, points {shape}, "
            f"{'with' if classes else 'without'} labels)",
            result,
            expected,
        )


def test_gradient_penalty_backpropagates_into_the_critic():
    # the linear critic, in closed form: d (||w|| - 1)^2 / d w = 2 (||w|| - 1) w / ||w||
    for seed, (shape, norm) in enumerate([((4, 1, 3, 3), 2.0), ((3, 7), 0.5)]):
        state = linear_critic_state(shape[1:], norm, seed=60 + seed, classes=2)
        labels = torch.tensor([0, 1, 1, 0][: shape[0]])
        points = randn(*shape, seed=70 + seed)
        result = penalty_and_gradients(
            "linear_critic", {"shape": shape[1:], "classes": 2}, state, points, labels
        )
        what = f"gradient_penalty (linear critic with ||w|| = {norm:g}, points {shape})"
        check_penalty(what, result, torch.tensor((norm - 1.0) ** 2, dtype=F64))
        weight = state["weight"]
        check_critic_gradients(
            what,
            result,
            {
                "weight": 2 * (norm - 1) * weight / weight.norm(),
                "bias": torch.zeros((), dtype=F64),
                "offset": torch.zeros(2, dtype=F64),
            },
        )
    # a nonlinear critic, against double backpropagation here
    shape, sizes = (5, 2, 3, 3), {"shape": (2, 3, 3), "hidden": 4, "classes": 0}
    critic, state = network_and_state("tanh_critic", sizes, 80, "float64", 3.0)
    points = randn(*shape, seed=81)
    leaf = points.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(critic(leaf).sum(), leaf, create_graph=True)
    expected = ((gradient.flatten(1).norm(dim=1) - 1) ** 2).mean()
    names = [name for name, _ in critic.named_parameters()]
    parameters = list(critic.parameters())
    expected_grads = [  # the output's bias does not reach the input gradient: zero
        torch.zeros_like(p) if g is None else g
        for p, g in zip(
            parameters, torch.autograd.grad(expected, parameters, allow_unused=True), strict=True
        )
    ]
    result = penalty_and_gradients("tanh_critic", sizes, state, points)
    what = f"gradient_penalty (tanh critic, points {shape})"
    check_penalty(what, result, expected.detach())
    check_critic_gradients(what, result, dict(zip(names, expected_grads, strict=True)))
