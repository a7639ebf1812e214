"""Part 1: autograd (`dlcc.training.autograd_basics`), checked against derivatives worked
out on paper, in float64.

The analytic results used here:
- d/dx sum(sin(x) * x^2) = cos(x) * x^2 + 2 x sin(x), elementwise;
- the gradient of log-sum-exp is the softmax;
- the Jacobian of the softmax p = softmax(x) is diag(p) - p p^T (symmetric);
- the Jacobian of x -> A tanh(x) is A diag(1 - tanh(x)^2).

When graded, the learner's code runs in a process of its own: the functions it differentiates
are module-level functions of `a2_autograd_helpers` (they cross by name and run there), what it
does to its inputs and its LogSumExp's autograd are observed there by that module's
`learner_side` helpers, and every expected value is computed here.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from a2_autograd_helpers import (
    grad_sum_sin_x_squared,
    gradient_and_input,
    gradient_errors,
    jacobian_of_matrix_map,
    log_sum_exp,
    logsumexp_forward,
    logsumexp_input_grad,
    logsumexp_saved_shapes,
    softmax,
    sum_sin_x_squared,
    tanh,
    vjp_of_matrix_map,
)
from a2_helpers import check_close, randn
from torch.autograd.gradcheck import GradcheckError

from dlcc.training import autograd_basics
from dlcc.training.autograd_basics import LogSumExp


def softmax_jacobian(x: torch.Tensor) -> torch.Tensor:
    p = softmax(x)
    return torch.diag(p) - torch.outer(p, p)


# ---- gradient ------------------------------------------------------------------------------
def test_gradient_matches_the_analytic_derivative():
    for seed, shape in enumerate([(5,), (3, 4), (2, 3, 2)]):
        x = randn(*shape, seed=seed)
        check_close(
            f"gradient of sum(sin(x) * x**2) at x of shape {shape}",
            autograd_basics.gradient(sum_sin_x_squared, x),
            grad_sum_sin_x_squared(x),
        )
    x = 3.0 * randn(7, seed=5)
    check_close(
        "gradient of logsumexp(x) (expected: softmax(x))",
        autograd_basics.gradient(log_sum_exp, x),
        softmax(x),
    )


def test_gradient_does_not_touch_the_input():
    # What gradient does to its input is seen where it runs (a learner_side helper).
    report = gradient_and_input(randn(4, seed=1), requires_grad=False)
    assert not report["x_requires_grad"], (
        "gradient: the input x now requires grad: work on a copy (x.detach().requires_grad_())"
    )
    leaf = randn(4, seed=2)
    report = gradient_and_input(leaf, requires_grad=True)
    assert report["x_grad_is_none"], (
        "gradient: x.grad was set: use torch.autograd.grad, which returns the gradient, "
        "rather than .backward(), which adds it into .grad"
    )
    result = report["result"]
    assert isinstance(result, torch.Tensor) and not report["result_requires_grad"], (
        "gradient: the result should be a plain tensor, not part of a graph (requires_grad)"
    )
    check_close("gradient at a leaf x", result, grad_sum_sin_x_squared(leaf))


# ---- vector-Jacobian products and Jacobians ----------------------------------------------
def test_vector_jacobian_product_of_softmax_and_a_non_square_map():
    x, v = randn(6, seed=3), randn(6, seed=4)
    p = softmax(x)
    check_close(
        "vector_jacobian_product of softmax (expected p * (v - p.v))",
        autograd_basics.vector_jacobian_product(softmax, x, v),
        p * (v - torch.dot(p, v)),
    )
    matrix, x, v = randn(3, 5, seed=5), randn(5, seed=6), randn(3, seed=7)
    check_close(
        "vector_jacobian_product of x -> A tanh(x), A (3, 5) (expected (A^T v) * tanh'(x))",
        vjp_of_matrix_map(matrix, tanh, x, v),
        (matrix.T @ v) * (1 - torch.tanh(x) ** 2),
    )


def test_jacobian_of_softmax():
    for seed, size in enumerate([1, 4, 7]):
        x = 2.0 * randn(size, seed=10 + seed)
        check_close(
            f"jacobian of softmax at x of shape ({size},) (expected diag(p) - p p^T)",
            autograd_basics.jacobian(softmax, x),
            softmax_jacobian(x),
        )


def test_jacobian_of_a_non_square_map():
    matrix, x = randn(3, 5, seed=20), randn(5, seed=21)
    result = jacobian_of_matrix_map(matrix, tanh, x)
    if isinstance(result, torch.Tensor) and tuple(result.shape) == (5, 3):
        raise AssertionError(
            "jacobian: shape (5, 3) is transposed; expected (3, 5) = (outputs, inputs): "
            "row i is the gradient of output i"
        )
    check_close(
        "jacobian of x -> A tanh(x), A (3, 5) (expected A diag(1 - tanh(x)^2))",
        result,
        matrix * (1 - torch.tanh(x) ** 2),
    )


# ---- checking a derivative ------------------------------------------------------------------
def test_gradient_error_accepts_a_right_derivative_and_flags_a_wrong_one():
    # On the learner's side, `gradient` is replaced by a stand-in that knows the true
    # answers (a2_autograd_helpers.gradient_errors), so that this test grades gradient_error
    # alone.
    x = randn(6, seed=30)
    errors = gradient_errors(x)
    error = errors["right"]
    assert isinstance(error, float), f"gradient_error: a float expected, got {type(error)}"
    assert error < 1e-12, (
        f"gradient_error: {error:.3g} for the right derivative of sum(sin(x) * x**2); "
        "expected 0 (up to rounding)"
    )
    error = errors["softmax"]
    assert isinstance(error, float), f"gradient_error: a float expected, got {type(error)}"
    assert error < 1e-12, (
        f"gradient_error: {error:.3g} for softmax as the gradient of logsumexp; expected 0"
    )
    error = errors["forgot"]
    assert isinstance(error, float), f"gradient_error: a float expected, got {type(error)}"
    expected = (2 * x * torch.sin(x)).abs().max().item()
    assert abs(error - expected) <= 1e-9 * max(1.0, expected), (
        f"gradient_error: {error:.6g} for a derivative missing the product rule's 2x sin(x) "
        f"term; expected max |2x sin(x)| = {expected:.6g}"
    )
    raised = errors["wrong_shape_raises"]
    assert raised == "ValueError", (
        f"gradient_error: an analytic gradient of shape (5,) for an input of shape (6,) should "
        f"raise a ValueError naming both shapes; it {'raised ' + raised if raised else 'did not'}"
    )


# ---- a custom autograd Function -------------------------------------------------------------
def test_logsumexp_forward_matches_torch_and_is_stable():
    for seed, shape in enumerate([(5,), (3, 7), (2, 3, 4)]):
        x = randn(*shape, seed=40 + seed)
        check_close(
            f"LogSumExp.forward on shape {shape}", LogSumExp.apply(x), torch.logsumexp(x, -1)
        )
    x = torch.tensor([[1e4, 1e4 - 1.0, 0.0], [-1e4, -1e4 + 2.0, -1e4]], dtype=torch.float64)
    result = LogSumExp.apply(x)
    assert isinstance(result, torch.Tensor) and torch.isfinite(result).all(), (
        f"LogSumExp.forward: {result} for inputs of +-1e4; subtract each row's maximum before exp"
    )
    check_close("LogSumExp.forward on inputs of +-1e4", result, torch.logsumexp(x, -1))
    saved = logsumexp_saved_shapes(randn(2, 5, seed=45))  # seen where autograd ran
    assert len(saved) == 2 and tuple(saved[0]) == (2, 5) and tuple(saved[1]) == (2,), (
        f"LogSumExp.forward: ctx.save_for_backward(x, result) expected, it saved {saved}"
    )


def test_logsumexp_backward_is_softmax():
    for seed, shape in enumerate([(5,), (3, 7), (2, 3, 4)]):
        x = randn(*shape, seed=50 + seed)
        ctx = SimpleNamespace(saved_tensors=(x, torch.logsumexp(x, -1)))
        grad_output = randn(*shape[:-1], seed=60 + seed)
        check_close(
            f"LogSumExp.backward on shape {shape} (expected grad_output[..., None] * softmax)",
            LogSumExp.backward(ctx, grad_output),
            grad_output.unsqueeze(-1) * softmax(x),
        )


class LearnersLogSumExp(torch.autograd.Function):
    """The learner's LogSumExp as gradcheck sees it here: its forward values and its input
    gradients (through autograd, ``LogSumExp.apply(x).backward(grad_output)``) come from
    the learner's process as data, and gradcheck compares them on this side."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        result = logsumexp_forward(x)
        if not isinstance(result, torch.Tensor):
            raise AssertionError(
                f"LogSumExp.forward: a tensor expected, got {type(result).__name__}"
            )
        return result.detach()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return logsumexp_input_grad(x.detach(), grad_output.detach())


def test_logsumexp_gradcheck():
    x = randn(3, 5, seed=70).requires_grad_(True)
    try:
        torch.autograd.gradcheck(LearnersLogSumExp.apply, (x,), eps=1e-6, atol=1e-7)
    except GradcheckError as error:
        first = str(error).strip().splitlines()[0]
        raise AssertionError(
            f"LogSumExp: torch.autograd.gradcheck (float64) finds the backward does not match "
            f"finite differences of the forward: {first}"
        ) from None


# ---- a backward pass by hand ----------------------------------------------------------------
def two_layer_net_forward(x: torch.Tensor, target: torch.Tensor, params: dict):
    """`two_layer_net_loss`'s forward pass, here: (loss, the cache its docstring names)."""
    hidden = torch.tanh(x @ params["w1"].T + params["b1"])  # (N, H)
    logits = hidden @ params["w2"].T + params["b2"]  # (N, C)
    cache = {"x": x, "target": target, "w1": params["w1"], "w2": params["w2"]}
    cache |= {"hidden": hidden, "probs": torch.softmax(logits, dim=1)}
    return F.cross_entropy(logits, target), cache


def check_two_layer_backward(batch: int, features: int, hidden: int, classes: int, seed: int):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    x, target = draw(batch, features), torch.randint(0, classes, (batch,), generator=generator)
    params = {"w1": draw(hidden, features), "b1": draw(hidden)}
    params |= {"w2": draw(classes, hidden), "b2": draw(classes)}
    leaves = {name: p.clone().requires_grad_(True) for name, p in params.items()}
    loss, _ = two_layer_net_forward(x, target, leaves)
    loss.backward()  # the oracle: autograd, here
    with torch.no_grad():
        _, cache = two_layer_net_forward(x, target, params)
        grads = autograd_basics.two_layer_net_backward(cache)  # the cache crosses as data
    assert isinstance(grads, dict), f"two_layer_net_backward: a dict expected, got {type(grads)}"
    where = f"(N={batch}, D={features}, H={hidden}, C={classes})"
    for name in ("w2", "b2", "w1", "b1"):
        assert name in grads, f"two_layer_net_backward: no gradient for {name!r} {where}"
        check_close(
            f"two_layer_net_backward: dLoss/d{name} {where} vs autograd",
            grads[name],
            leaves[name].grad,
        )


def test_two_layer_backward_matches_autograd():
    check_two_layer_backward(batch=6, features=5, hidden=4, classes=3, seed=80)
    check_two_layer_backward(batch=1, features=3, hidden=7, classes=2, seed=81)
