"""Helpers for Assignment 2's autograd tests (Part 1; imported by name: this folder is on
sys.path, so it is public, and the learner's process imports its own copy).

When graded, the learner's code runs in a process of its own (`dlcc.course.remote`): a torch
graph cannot span two processes, and tensors cross as copies (values, ``requires_grad`` and
``.grad``). So:

- the functions handed to the learner's `gradient`, `vector_jacobian_product` and `jacobian`
  are module-level functions of this module: they cross by name and run, differentiably, in
  the learner's process; a function with parameters (x -> A tanh(x)) is built there, by a
  `learner_side` helper, from a module-level function and data;
- what the learner's code does to its input (``x.requires_grad``, ``x.grad``) and what the
  learner's `LogSumExp` computes (forward values, saved tensors, input gradients) are
  observed there, by the `learner_side` helpers below, and come back as data.

The helpers only report: every expected value is computed, and every check made, in the tests.
"""

from __future__ import annotations

import torch

from dlcc.course.remote import learner_side
from dlcc.training import autograd_basics


# ---- functions the learner's code differentiates (they cross by name) ---------------------
def sum_sin_x_squared(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x) * x**2).sum()


def grad_sum_sin_x_squared(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x) * x**2 + 2 * x * torch.sin(x)


def forgot_product_rule(x: torch.Tensor) -> torch.Tensor:
    """A wrong derivative of sum(sin(x) * x**2): the 2x sin(x) term is missing."""
    return torch.cos(x) * x**2


def drop_last(x: torch.Tensor) -> torch.Tensor:
    """A "gradient" of the wrong shape: one element short."""
    return x[:-1]


def log_sum_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, dim=-1)


def softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


def sin_times_x(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x


# ---- on the learner's side: gradient, and what it does to its input -----------------------
@learner_side
def gradient_and_input(values: torch.Tensor, requires_grad: bool) -> dict:
    """The learner's ``gradient(sum_sin_x_squared, x)`` at a leaf x made here from `values`
    (requiring grad or not), and what the call left on x and on the result."""
    x = values.detach().clone().requires_grad_(requires_grad)
    result = autograd_basics.gradient(sum_sin_x_squared, x)
    return {
        "result": result,
        "result_requires_grad": bool(getattr(result, "requires_grad", False)),
        "x_requires_grad": bool(x.requires_grad),
        "x_grad_is_none": x.grad is None,
    }


# ---- on the learner's side: maps with a matrix, x -> A inner(x) ---------------------------
@learner_side
def vjp_of_matrix_map(matrix: torch.Tensor, inner, x: torch.Tensor, v: torch.Tensor):
    """The learner's ``vector_jacobian_product(t -> matrix @ inner(t), x, v)``."""
    return autograd_basics.vector_jacobian_product(lambda t: matrix @ inner(t), x, v)


@learner_side
def jacobian_of_matrix_map(matrix: torch.Tensor, inner, x: torch.Tensor):
    """The learner's ``jacobian(t -> matrix @ inner(t), x)``."""
    return autograd_basics.jacobian(lambda t: matrix @ inner(t), x)


# ---- on the learner's side: gradient_error, with `gradient` known to be right -------------
TRUE_GRADIENTS = {sum_sin_x_squared: grad_sum_sin_x_squared, log_sum_exp: softmax}


def true_gradient(f, x: torch.Tensor) -> torch.Tensor:
    """A stand-in for the learner's `gradient` that knows the true answers."""
    return TRUE_GRADIENTS[f](x.detach().clone())


@learner_side
def gradient_errors(x: torch.Tensor) -> dict:
    """The learner's `gradient_error` on three (f, analytic gradient) pairs at `x`, and what
    it raises for an analytic gradient of the wrong shape ("ValueError", another exception's
    name, or "" for none). Its module's `gradient` is the true one meanwhile, so that only
    gradient_error is graded."""
    saved = autograd_basics.gradient
    autograd_basics.gradient = true_gradient
    try:
        errors = {
            "right": autograd_basics.gradient_error(sum_sin_x_squared, grad_sum_sin_x_squared, x),
            "softmax": autograd_basics.gradient_error(log_sum_exp, softmax, x),
            "forgot": autograd_basics.gradient_error(sum_sin_x_squared, forgot_product_rule, x),
        }
        try:
            autograd_basics.gradient_error(sum_sin_x_squared, drop_last, x)
        except Exception as error:  # reported as data, checked in the test
            errors["wrong_shape_raises"] = type(error).__name__
        else:
            errors["wrong_shape_raises"] = ""
        return errors
    finally:
        autograd_basics.gradient = saved


# ---- on the learner's side: the LogSumExp autograd Function -------------------------------
@learner_side
def logsumexp_forward(x: torch.Tensor):
    """``LogSumExp.apply(x)`` for an x that does not require grad."""
    return autograd_basics.LogSumExp.apply(x.detach())


@learner_side
def logsumexp_saved_shapes(x: torch.Tensor) -> list:
    """The shapes of the tensors ``LogSumExp.apply(x)`` saves for backward, x requiring grad."""
    output = autograd_basics.LogSumExp.apply(x.detach().requires_grad_(True))
    return [tuple(t.shape) for t in output.grad_fn.saved_tensors]


@learner_side
def logsumexp_input_grad(x: torch.Tensor, grad_output: torch.Tensor):
    """dL/dx through the learner's LogSumExp: ``LogSumExp.apply(x).backward(grad_output)``
    at a fresh leaf x, and its ``.grad`` (None when the backward gave none)."""
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():  # also when called from a backward pass (plain pytest)
        autograd_basics.LogSumExp.apply(leaf).backward(grad_output.detach())
    return leaf.grad
