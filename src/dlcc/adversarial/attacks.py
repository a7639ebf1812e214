"""L-infinity adversarial attacks in pixel space: FGSM, FGSM with a random start, PGD.

Every attack takes pixels in [0, 1] and an epsilon in pixel units (0.1 = a tenth of the
range), and returns pixels in [0, 1] within eps of the originals in every coordinate. The
models of this project take standardised inputs, so a trained model is wrapped in a
`PixelModel`, which standardises inside its forward: the gradient then flows back to the
pixels, and clipping to the valid image range is exact.

    pixel_model = PixelModel(model, mean, std)            # (B, C, H, W) pixels -> logits
    adversarial = pgd(pixel_model, pixels, labels, eps=0.1, alpha=0.025, steps=20)

`attack(model, pixels, labels, spec)` runs the attack an `AttackSpec` names; the attack
command, `accuracy_vs_eps` and adversarial training (`AdversarialTraining`, a task's
training-input step) all go through it, so training perturbs exactly as evaluation does.

The attacks never change the model's mode (train/eval) and never leave gradients on its
parameters: they differentiate the loss with respect to the input only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.errors import DlccError

ATTACKS = ("fgsm", "fgsm_rs", "pgd")


class AttackError(DlccError):
    """Bad attack settings (epsilon, step size, steps, name); the message says what to pass."""


class PixelModel(nn.Module):
    """Wraps a model that takes standardised inputs so that it takes pixels in [0, 1].

    forward: (B, C, H, W) pixels -> model((pixels - mean) / std), e.g. (B, K) logits.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)

    def to_pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standardised inputs (B, C, H, W) -> pixels (B, C, H, W)."""
        return inputs * self.std + self.mean

    def to_inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, H, W) -> the standardised inputs the wrapped model takes."""
        return (pixels - self.mean) / self.std


@dataclass(frozen=True)
class AttackSpec:
    """One attack's settings, in pixel units.

    name: "fgsm" (one signed-gradient step of size eps), "fgsm_rs" (a uniform random start
        in the eps-ball, then one step of size alpha: Wong et al. 2020), or "pgd" (steps
        steps of size alpha, each projected back onto the eps-ball and [0, 1]).
    alpha: the step size; None means eps for fgsm, 1.25 eps for fgsm_rs (Wong et al.) and
        2.5 eps / steps for pgd (Madry et al.).
    steps: pgd's iterations (fgsm and fgsm_rs take one).
    random_start: pgd only; fgsm_rs always starts at random, fgsm never.
    """

    name: str = "pgd"
    eps: float = 0.1
    alpha: float | None = None
    steps: int = 10
    random_start: bool = True

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise AttackError(
                f"attack: expected one of {', '.join(ATTACKS)}, received {self.name!r}"
            )
        check_eps(self.eps, "eps")
        if self.alpha is not None and not (_is_number(self.alpha) and self.alpha > 0):
            raise AttackError(
                f"alpha (the step size, in pixel units): expected a number > 0, received "
                f"{self.alpha!r}; try 2.5 * eps / steps"
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise AttackError(f"steps: expected an integer >= 1, received {self.steps!r}")

    @property
    def step_size(self) -> float:
        if self.alpha is not None:
            return float(self.alpha)
        if self.name == "fgsm":
            return float(self.eps)
        if self.name == "fgsm_rs":
            return 1.25 * float(self.eps)
        return 2.5 * float(self.eps) / self.steps


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def check_eps(eps, what: str = "eps") -> float:
    """eps as a float; AttackError unless it is a number in [0, 1] (pixel units)."""
    if not _is_number(eps) or not 0 <= eps <= 1:
        raise AttackError(
            f"{what}: expected a number in [0, 1] in pixel units (pixels are scaled to "
            f"[0, 1]; 8/255 = 0.031), received {eps!r}"
        )
    return float(eps)


def input_gradient(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d(summed cross-entropy)/d(pixels): (B, C, H, W), one sample's gradient per row.

    The loss is summed, not averaged, so that a sample's gradient does not shrink with the
    batch size; the parameters get no gradients.
    """
    with torch.enable_grad():
        pixels = pixels.detach().requires_grad_(True)
        loss = F.cross_entropy(model(pixels).float(), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, pixels)
    return gradient


def project(adversarial: torch.Tensor, pixels: torch.Tensor, eps: float) -> torch.Tensor:
    """The nearest point of the eps-ball around `pixels` (L-infinity) within [0, 1]."""
    return torch.min(torch.max(adversarial, pixels - eps), pixels + eps).clamp_(0.0, 1.0)


def fgsm(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015): clip(x + eps sign(grad), 0, 1).

    pixels (B, C, H, W) in [0, 1], labels (B,) int64 -> adversarial pixels (B, C, H, W).
    """
    eps = check_eps(eps)
    # BEGIN SOLUTION fgsm: one step of eps * sign(d loss / d pixels), clipped to [0, 1]
    gradient = input_gradient(model, pixels, labels)
    return (pixels.detach() + eps * gradient.sign()).clamp_(0.0, 1.0)
    # END SOLUTION
    # BEGIN PROMPT
    # input_gradient(model, pixels, labels) (above) is d(summed cross-entropy)/d pixels,
    # (B, C, H, W), without touching the model's parameters. Step every pixel by eps in the
    # direction that raises the loss (its gradient's sign, torch.sign), from the original
    # pixels (detached), then clip to the image range [0, 1] (clamp): (B, C, H, W).
    # END PROMPT


def pgd(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent on the loss (Madry et al. 2018), L-infinity.

    pixels (B, C, H, W) in [0, 1], labels (B,) -> adversarial pixels (B, C, H, W): from
    x (or, with `random_start`, a uniform draw in the eps-ball), `steps` times
    x' <- project(x' + alpha sign(grad)). One step with alpha = eps and no random start is
    FGSM; one step from a random start is Wong et al.'s FGSM-RS. `generator` draws the start
    (on the pixels' device), so a seeded run perturbs the same way every time.
    """
    eps = check_eps(eps)
    pixels = pixels.detach()
    adversarial = pixels.clone()
    if random_start and eps > 0:
        noise = torch.rand(
            pixels.shape, generator=generator, device=pixels.device, dtype=pixels.dtype
        )
        adversarial = project(pixels + (2 * noise - 1) * eps, pixels, eps)  # (B, C, H, W)
    for _ in range(steps):
        gradient = input_gradient(model, adversarial, labels)
        adversarial = project(adversarial + alpha * gradient.sign(), pixels, eps)
    return adversarial


def attack(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    spec: AttackSpec,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The attack `spec` names: pixels (B, C, H, W) in [0, 1] -> adversarial pixels."""
    if spec.name == "fgsm":
        return fgsm(model, pixels, labels, spec.eps)
    if spec.name == "fgsm_rs":
        return pgd(model, pixels, labels, spec.eps, spec.step_size, 1, True, generator)
    return pgd(
        model, pixels, labels, spec.eps, spec.step_size, spec.steps, spec.random_start, generator
    )


def attack_spec(options) -> AttackSpec:
    """A recipe's ``task.options.adversarial`` mapping as an AttackSpec, one-line errors.

    ``{attack: fgsm_rs, eps: 0.3, alpha: 0.375}`` or ``{attack: pgd, eps: 0.3, steps: 7}``.
    """
    if isinstance(options, AttackSpec):
        return options
    if not isinstance(options, dict):
        raise AttackError(
            "adversarial: expected a mapping such as {attack: fgsm_rs, eps: 0.3}, received "
            f"{options!r}"
        )
    known = {"attack", "eps", "alpha", "steps", "random_start"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise AttackError(
            f"adversarial: unknown {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(known))}"
        )
    if "eps" not in options:
        raise AttackError("adversarial: eps is required (pixel units, e.g. 0.3 for MNIST)")
    return AttackSpec(
        name=options.get("attack", "fgsm_rs"),
        eps=options["eps"],
        alpha=options.get("alpha"),
        steps=options.get("steps", 10),
        random_start=options.get("random_start", True),
    )


class AdversarialTraining:
    """The training-input step of adversarial training, as the loop calls an augmentation.

    ``(inputs, targets, generator) -> (adversarial inputs, targets)``: standardised inputs
    (B, C, H, W) go to pixels, are attacked with `spec` against the model as it is now (in
    its current mode; the parameters' gradients are not touched), and come back
    standardised. A model trained on these minimises the loss under attack (Madry et al.).
    """

    def __init__(self, model: nn.Module, mean, std, spec: AttackSpec) -> None:
        self.pixel_model = PixelModel(model, mean, std)
        self.spec = spec

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, generator=None):
        pixel_model = self.pixel_model.to(inputs.device)
        pixels = pixel_model.to_pixels(inputs.float()).clamp_(0.0, 1.0)
        adversarial = attack(pixel_model, pixels, targets, self.spec, generator)
        return pixel_model.to_inputs(adversarial).to(inputs.dtype), targets
