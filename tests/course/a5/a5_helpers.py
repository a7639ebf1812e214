"""Helpers shared by the Assignment 5 graded tests (imported by name: this folder is on
sys.path). Nothing here calls the reference's solution regions: the oracles are formulas
written in the tests (torch.nn.functional, float64), closed forms on linear models, and
torch.autograd.grad on twins of the learner's models.

The small networks the tests use are defined here, so that both of a grading's processes
have them: the learner's code works on a network made in the learner's process (by the
helpers marked `learner_side`, from a `state_dict` sent as data), and the test checks the
result against a twin made here from the same `state_dict`. A gradient must be taken where
the graph is, so the helpers that need one (a loss's gradient, the penalty's gradient with
respect to the critic's weights) run the backward pass on the learner's side and return
the gradients as data. Under plain pytest the same helpers run in place.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlcc.course.checks import check_close, randn  # noqa: F401  (the tests import them from here)
from dlcc.course.remote import connected, learner_side


@learner_side
def use_torch_threads(count: int) -> int:
    """Run PyTorch on `count` threads (in the learner's process when graded); the old count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous


def on_one_thread_there() -> None:
    """When graded, the learner's process runs PyTorch on one thread too."""
    if connected():
        use_torch_threads(1)


# ---- the networks --------------------------------------------------------------------------
class LinearCritic(nn.Module):
    """f(x) = <w, flatten(x)> + b (+ offset[y] when conditional): (N, *shape) -> (N,).

    Its gradient with respect to every sample is w (reshaped), whatever the sample and label:
    the gradient penalty is (||w||_2 - 1)^2 in closed form.
    """

    def __init__(self, shape: tuple[int, ...], classes: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(math.prod(shape)))
        self.bias = nn.Parameter(torch.zeros(()))
        self.offset = nn.Parameter(torch.zeros(classes)) if classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        scores = x.flatten(1) @ self.weight + self.bias  # (N,)
        if self.offset is not None:
            scores = scores + self.offset[labels]
        return scores


class TanhCritic(nn.Module):
    """f(x) = <v, tanh(W flatten(x) + c)> (+ <e[y], tanh(...)> when conditional): (N,).

    Each sample's score depends on that sample alone, and its gradient differs from sample
    to sample (a penalty on the mean gradient is not the mean penalty).
    """

    def __init__(self, shape: tuple[int, ...], hidden: int = 6, classes: int = 0) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(shape), hidden)
        self.out = nn.Linear(hidden, 1)
        self.embed = nn.Embedding(classes, hidden) if classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = torch.tanh(self.hidden(x.flatten(1)))  # (N, hidden)
        scores = self.out(features)[:, 0]  # (N,)
        if self.embed is not None:
            scores = scores + (self.embed(labels) * features).sum(dim=1)
        return scores


class LinearClassifier(nn.Module):
    """logits = flatten(x) @ W.T + b: (B, *shape) -> (B, K). d logit_k / d x = W[k]."""

    def __init__(self, shape: tuple[int, ...], classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(shape), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class TinyConvNet(nn.Module):
    """conv 3x3 -> tanh -> conv 3x3 -> tanh -> linear: (B, C, H, W) -> (B, K), smooth, so no
    input gradient is exactly zero."""

    def __init__(self, channels: int, size: int, classes: int, width: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.head = nn.Linear(width * size * size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return self.head(x.flatten(1))


NETWORKS = {
    "linear_critic": LinearCritic,
    "tanh_critic": TanhCritic,
    "linear_classifier": LinearClassifier,
    "tiny_conv": TinyConvNet,
}


def build(kind: str, sizes: dict, state: dict | None = None, dtype: str = "float32"):
    """NETWORKS[kind](**sizes) in `dtype`, with `state` loaded when given."""
    network = NETWORKS[kind](**sizes).to(getattr(torch, dtype))
    if state is not None:
        network.load_state_dict(state)
    return network


def network_and_state(kind: str, sizes: dict, seed: int, dtype: str = "float32", scale=1.0):
    """A network with weights drawn from `seed` (each parameter N(0, scale^2 / fan-in)-ish),
    and its state_dict as data, for the learner's twin."""
    network = build(kind, sizes, dtype=dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            fan_in = parameter[0].numel() if parameter.ndim > 1 else max(parameter.numel(), 1)
            draw = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(scale * draw / math.sqrt(fan_in))
    state = {name: value.detach().clone() for name, value in network.state_dict().items()}
    return network, state


def parameters_untouched(network: nn.Module) -> str | None:
    """None when no parameter has a .grad, else a sentence naming the first that has one."""
    for name, parameter in network.named_parameters():
        if parameter.grad is not None:
            return f"the network's parameter {name!r} has a .grad"
    return None


# ---- the GAN losses on the learner's side ------------------------------------------------------
@learner_side
def loss_and_gradients(name: str, *scores: torch.Tensor, **options):
    """(the learner's `dlcc.gan.losses.<name>(*scores, **options)`, its gradient with respect
    to each score tensor) as data: the backward pass runs where the loss was computed. A
    gradient is None when the loss does not reach that input."""
    from dlcc.gan import losses

    leaves = [s.detach().clone().requires_grad_(True) for s in scores]
    loss = getattr(losses, name)(*leaves, **options)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    value = loss.detach() if isinstance(loss, torch.Tensor) else loss
    return value, [leaf.grad for leaf in leaves]


@learner_side
def penalty_and_gradients(kind: str, sizes: dict, state: dict, points, labels=None):
    """The learner's gradient_penalty(critic, points, labels) on a critic built from `state`
    (float64), and its gradients with respect to the critic's parameters, as data:
    {"penalty", "grads" ({name: tensor or None}), "differentiable", "points_changed"}."""
    from dlcc.gan.losses import gradient_penalty

    critic = build(kind, sizes, state, dtype="float64")
    original = points.clone()
    penalty = gradient_penalty(critic, points, labels)
    differentiable = isinstance(penalty, torch.Tensor) and penalty.requires_grad
    if differentiable:
        penalty.backward()
    return {
        "penalty": penalty.detach() if isinstance(penalty, torch.Tensor) else penalty,
        "grads": {name: p.grad for name, p in critic.named_parameters()},
        "differentiable": differentiable,
        "points_changed": not torch.equal(points, original),
    }


# ---- attacks and maps on the learner's side ------------------------------------------------
@learner_side
def run_attack(
    kind: str, sizes: dict, state: dict, pixels, labels, eps: float, *, train_mode=False, **pgd
):
    """The learner's fgsm (or, with pgd options alpha/steps/random_start, the learner's pgd)
    on a network built from `state`, as data: {"adversarial", "training" (the network's mode
    after), "parameters" (None or what has a .grad), "pixels_changed"}."""
    from dlcc.adversarial import attacks

    network = build(kind, sizes, state)
    network.train(train_mode)
    original = pixels.clone()
    if pgd:
        adversarial = attacks.pgd(network, pixels, labels, eps, **pgd)
    else:
        adversarial = attacks.fgsm(network, pixels, labels, eps)
    return {
        "adversarial": adversarial,
        "training": network.training,
        "parameters": parameters_untouched(network),
        "pixels_changed": not torch.equal(pixels, original),
    }


@learner_side
def run_explain(
    method: str, kind: str, sizes: dict, state: dict, inputs, classes, *, no_grad=False
):
    """The learner's `dlcc.explain.methods.<method>` ("input_gradient" or "saliency") on a
    network built from `state` (in eval mode), explaining the logit of `classes` (B,), as
    data: {"maps", "training", "parameters"}. With `no_grad`, called inside torch.no_grad(),
    as `dlcc explain` may be."""
    from dlcc.explain import methods

    network = build(kind, sizes, state).eval()

    def score(outputs: torch.Tensor) -> torch.Tensor:  # (B, K) -> (B,): outputs[b, classes[b]]
        return outputs.gather(1, classes.view(-1, 1)).squeeze(1)

    with torch.no_grad() if no_grad else torch.enable_grad():
        maps = getattr(methods, method)(network, inputs, score)
    return {
        "maps": maps,
        "training": network.training,
        "parameters": parameters_untouched(network),
    }


def check_untouched(what: str, result: dict, *, training: bool) -> None:
    """The network kept its mode and got no parameter gradients."""
    if result["training"] != training:
        mode = "train" if training else "eval"
        raise AssertionError(
            f"{what}: the network was in {mode} mode and is not any more: leave the mode as "
            "it was (do not call model.train() or model.eval())"
        )
    if result["parameters"] is not None:
        raise AssertionError(
            f"{what}: {result['parameters']}: take the gradient with respect to the input only "
            "(torch.autograd.grad(loss, inputs)), not with loss.backward()"
        )
