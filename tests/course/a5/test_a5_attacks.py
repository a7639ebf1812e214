"""Part 3: FGSM (`fgsm` in `dlcc.adversarial.attacks`) in pixel space: on a two-class linear
model, where the summed cross-entropy's input gradient of sample b is
(p_1 - [y_b = 1]) (W_1 - W_0), so FGSM steps every pixel by eps along sign(W_other - W_y)
whatever the probabilities; its clipping to [0, 1] and its eps budget; against
torch.autograd.grad on a small network built here as a twin; the model left as it was; and
PGD (reference code) at least as strong as FGSM.

When graded, the network is built in the learner's process from a state_dict sent as data
(`a5_helpers.run_attack`); the adversarial pixels come back as data and are checked here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a5_helpers import check_close, check_untouched, network_and_state, run_attack

LINEAR = "linear_classifier"
CONV = "tiny_conv"


def uniform(shape, low, high, seed):
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=generator)


def two_class_linear_state(shape, seed):
    """A two-class linear model whose weight rows differ by at least 0.2 in every pixel, so the
    gradient's sign is that of W_1 - W_0 everywhere."""
    size = torch.Size(shape).numel()
    generator = torch.Generator().manual_seed(seed)
    gap = (0.2 + torch.rand(size, generator=generator)) * torch.where(
        torch.rand(size, generator=generator) < 0.5, -1.0, 1.0
    )
    base = 0.3 * torch.randn(size, generator=generator)
    weight = torch.stack([base, base + gap])  # (2, D): W_1 - W_0 = gap
    bias = 0.1 * torch.randn(2, generator=generator)
    return {"linear.weight": weight, "linear.bias": bias}, gap.view(shape)


def check_adversarial(what, result, pixels, eps, expected=None):
    """In [0, 1], within eps of the pixels (L-inf), of their shape and dtype, `expected` if
    given; the model left alone and the pixels unchanged."""
    adversarial = result["adversarial"]
    if not isinstance(adversarial, torch.Tensor) or adversarial.shape != pixels.shape:
        described = (
            tuple(adversarial.shape)
            if isinstance(adversarial, torch.Tensor)
            else type(adversarial).__name__
        )
        raise AssertionError(f"{what}: {tuple(pixels.shape)} pixels expected, got {described}")
    if adversarial.dtype != pixels.dtype:
        raise AssertionError(f"{what}: {pixels.dtype} expected, got {adversarial.dtype}")
    if result["pixels_changed"]:
        raise AssertionError(
            f"{what}: the input pixels were changed in place: return new pixels and leave "
            "the originals as they are"
        )
    low, high = float(adversarial.min()), float(adversarial.max())
    if low < 0 or high > 1:
        raise AssertionError(
            f"{what}: adversarial pixels from {low:.4g} to {high:.4g}: clip them to the image "
            "range [0, 1]"
        )
    moved = float((adversarial - pixels).abs().max())
    if moved > eps + 1e-6:
        raise AssertionError(
            f"{what}: a pixel moved by {moved:.4g}, more than eps = {eps:g} (L-infinity budget)"
        )
    if expected is not None:
        check_close(what, adversarial, expected, rtol=0, atol=1e-6)


def test_fgsm_on_a_linear_model_steps_along_the_weights_sign():
    shape = (2, 3, 3)
    state, gap = two_class_linear_state(shape, seed=0)
    sizes = {"shape": shape, "classes": 2}
    pixels = uniform((6, *shape), 0.2, 0.8, seed=1)  # far enough from 0 and 1: no clipping
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    # y = 0: the loss rises along W_1 - W_0 = gap; y = 1: along -gap
    direction = torch.where(labels.view(-1, 1, 1, 1) == 0, 1.0, -1.0) * gap.sign()
    for eps in (0.1, 0.03, 0.15):
        result = run_attack(LINEAR, sizes, state, pixels, labels, eps)
        check_adversarial(
            f"fgsm (two-class linear model, eps={eps:g})",
            result,
            pixels,
            eps,
            pixels + eps * direction,
        )
    result = run_attack(LINEAR, sizes, state, pixels, labels, 0.0)
    check_adversarial("fgsm (eps=0: the pixels themselves)", result, pixels, 0.0, pixels)


def test_fgsm_clips_to_the_pixel_range_within_eps():
    shape = (1, 4, 4)
    state, gap = two_class_linear_state(shape, seed=10)
    sizes = {"shape": shape, "classes": 2}
    labels = torch.tensor([0, 1, 0, 1])
    direction = torch.where(labels.view(-1, 1, 1, 1) == 0, 1.0, -1.0) * gap.sign()
    # black and white pixels, pixels near the edges, and mid-grey ones
    values = torch.tensor([0.0, 1.0, 0.02, 0.98, 0.5, 0.05, 0.95, 0.3])
    pixels = values[torch.arange(4 * 16) % 8].view(4, *shape)
    for eps in (0.1, 0.5):
        result = run_attack(LINEAR, sizes, state, pixels, labels, eps)
        check_adversarial(
            f"fgsm (pixels at and near 0 and 1, eps={eps:g})",
            result,
            pixels,
            eps,
            (pixels + eps * direction).clamp(0, 1),
        )


def oracle_fgsm(network, pixels, labels, eps):
    """FGSM by its definition, with a twin of the learner's network: the pixels' gradient of
    the summed cross-entropy, its sign, one step of eps, clipped; and the gradient."""
    leaf = pixels.clone().requires_grad_(True)
    loss = F.cross_entropy(network(leaf), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, leaf)
    return (pixels + eps * gradient.sign()).clamp(0, 1), gradient


def check_against_autograd(what, sizes, seed, batch, eps, **options):
    network, state = network_and_state(CONV, sizes, seed, scale=2.0)
    shape = (batch, sizes["channels"], sizes["size"], sizes["size"])
    pixels = uniform(shape, 0.0, 1.0, seed=seed + 1)
    labels = torch.arange(batch) % sizes["classes"]
    expected, gradient = oracle_fgsm(network, pixels, labels, eps)
    result = run_attack(CONV, sizes, state, pixels, labels, eps, **options)
    # where the gradient is about 0, float rounding may flip its sign: only the budget applies
    clear = gradient.abs() > 1e-5 * gradient.abs().max()
    expected = torch.where(clear, expected, result["adversarial"])
    check_adversarial(what, result, pixels, eps, expected)
    return result


def test_fgsm_matches_autograd_on_a_small_network():
    sizes = {"channels": 2, "size": 5, "classes": 3}
    for seed, (batch, eps) in enumerate([(4, 0.05), (1, 0.2), (7, 0.01)]):
        check_against_autograd(
            f"fgsm (small conv network, batch {batch}, eps={eps:g})",
            sizes,
            seed=20 + 2 * seed,
            batch=batch,
            eps=eps,
        )
    check_against_autograd(
        "fgsm (small conv network, one channel)",
        {"channels": 1, "size": 4, "classes": 2},
        seed=30,
        batch=3,
        eps=0.1,
    )


def test_fgsm_leaves_the_model_alone():
    sizes = {"channels": 1, "size": 4, "classes": 3}
    for train_mode in (False, True):
        mode = "train" if train_mode else "eval"
        result = check_against_autograd(
            f"fgsm (a network in {mode} mode)",
            sizes,
            seed=40,
            batch=3,
            eps=0.1,
            train_mode=train_mode,
        )
        check_untouched(f"fgsm (a network in {mode} mode)", result, training=train_mode)


def test_pgd_is_at_least_as_strong_as_fgsm():
    """FGSM raises the loss; PGD (20 projected steps, reference code) raises it at least as
    much. Both stay in the budget. The losses are computed here, on a twin."""
    sizes = {"channels": 1, "size": 6, "classes": 3}
    network, state = network_and_state(CONV, sizes, 50, scale=3.0)
    pixels = uniform((12, 1, 6, 6), 0.0, 1.0, seed=51)
    labels = network(pixels).argmax(dim=1).detach()  # the clean predictions: all correct

    def loss(images):
        with torch.no_grad():
            return float(F.cross_entropy(network(images), labels))

    for eps in (0.05, 0.15):
        fgsm_result = run_attack(CONV, sizes, state, pixels, labels, eps)
        check_adversarial(f"fgsm (eps={eps:g})", fgsm_result, pixels, eps)
        pgd_result = run_attack(
            CONV, sizes, state, pixels, labels, eps, alpha=eps / 8, steps=20, random_start=False
        )
        check_adversarial(f"pgd (eps={eps:g})", pgd_result, pixels, eps)
        clean, after_fgsm = loss(pixels), loss(fgsm_result["adversarial"])
        after_pgd = loss(pgd_result["adversarial"])
        if not after_fgsm > clean:
            raise AssertionError(
                f"fgsm (eps={eps:g}): the mean cross-entropy went from {clean:.4f} to "
                f"{after_fgsm:.4f}; an attack must raise it: step along the gradient's sign"
            )
        if not after_pgd >= after_fgsm - 1e-6:
            raise AssertionError(
                f"eps={eps:g}: PGD's loss {after_pgd:.4f} is below FGSM's {after_fgsm:.4f}; "
                "twenty projected steps should reach at least what one step does"
            )
