"""Autograd in small pieces: gradients, vector-Jacobian products and Jacobians, a custom
autograd Function, and a backward pass written by hand and checked against autograd.

PyTorch records the operations that make a tensor from tensors with ``requires_grad=True``
and, asked for a gradient, runs that record backwards (reverse-mode automatic
differentiation). What one backward run computes is a vector-Jacobian product: for
y = f(x) and a vector v shaped like y, the vector v^T J (shaped like x), where J is the
Jacobian dy/dx. Everything below is built from that one operation:

- `gradient`: the gradient of a scalar function (v = 1);
- `vector_jacobian_product`: v^T J for any v;
- `jacobian`: the whole J, one row (one v = a unit vector) at a time;
- `gradient_error`: an analytic derivative checked against autograd;
- `LogSumExp`: a differentiable operation with a hand-written backward, which
  ``torch.autograd.gradcheck`` verifies against finite differences;
- `two_layer_net_backward`: the backward pass of a small network, by hand.

The functions take and return tensors and work in any floating dtype; checks against
analytic results are best done in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

TensorFunction = Callable[[torch.Tensor], torch.Tensor]


def gradient(f: TensorFunction, x: torch.Tensor) -> torch.Tensor:
    """df/dx at `x`, for a function `f` returning a scalar (a tensor with one element).

    Args:
        f: a function of one tensor, built from differentiable torch operations.
        x: the point, any shape.

    Returns:
        The gradient, same shape and dtype as `x`. `x` itself is left as it is: its
        ``.grad`` stays None and no graph stays attached to the result.
    """
    # BEGIN SOLUTION gradient: df/dx with torch.autograd.grad, leaving x untouched
    point = x.detach().requires_grad_(True)
    value = f(point)
    (grad,) = torch.autograd.grad(value, point)
    return grad
    # END SOLUTION
    # BEGIN PROMPT
    # Make a fresh leaf that requires grad (x.detach().requires_grad_(True)), evaluate f on
    # it, and ask torch.autograd.grad(output, inputs) for the gradient. Unlike
    # .backward(), autograd.grad returns the gradients (a tuple) instead of adding them
    # into .grad.
    # END PROMPT


def vector_jacobian_product(f: TensorFunction, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v^T J: the vector-Jacobian product of `f` at `x`, where J = df/dx.

    Args:
        f: a function of one tensor; its output y may have any shape.
        x: the point, any shape.
        v: a tensor shaped like y = f(x).

    Returns:
        sum_i v_i dy_i/dx, shaped like `x`. This is what one backward pass computes: the
        gradient of the scalar (v * y).sum() with v held constant.
    """
    # BEGIN SOLUTION vector_jacobian_product: v^T J with one backward pass
    point = x.detach().requires_grad_(True)
    output = f(point)
    (product,) = torch.autograd.grad(output, point, grad_outputs=v)
    return product
    # END SOLUTION
    # BEGIN PROMPT
    # As in `gradient`, but the output is not a scalar: pass v as grad_outputs to
    # torch.autograd.grad, the "upstream gradient" the backward pass starts from.
    # END PROMPT


def jacobian(f: TensorFunction, x: torch.Tensor) -> torch.Tensor:
    """The Jacobian matrix df/dx of a vector function at a vector `x`.

    Args:
        f: a function from a (n,) tensor to a (m,) tensor.
        x: (n,) the point.

    Returns:
        (m, n): row i is the gradient of output i, d f(x)_i / dx.

    Built one row at a time: row i is the vector-Jacobian product with the i-th unit
    vector, so m backward passes through one forward pass (``retain_graph=True`` keeps
    the recorded graph alive between them).
    """
    # BEGIN SOLUTION jacobian: one vector-Jacobian product per output, with unit vectors
    point = x.detach().requires_grad_(True)
    output = f(point)  # (m,)
    rows = []
    for index in range(output.numel()):
        unit = torch.zeros_like(output)
        unit[index] = 1.0
        (row,) = torch.autograd.grad(output, point, grad_outputs=unit, retain_graph=True)
        rows.append(row)
    return torch.stack(rows)  # (m, n)
    # END SOLUTION
    # BEGIN PROMPT
    # One forward pass, then for each output index i a backward pass with
    # grad_outputs = the i-th unit vector (torch.zeros_like(output), then a 1 at i).
    # A backward pass frees the graph unless you pass retain_graph=True. Stack the rows.
    # END PROMPT


def gradient_error(
    f: TensorFunction,
    analytic_gradient: TensorFunction,
    x: torch.Tensor,
) -> float:
    """The largest absolute difference between a derivative worked out on paper and the one
    autograd computes: max |analytic_gradient(x) - df/dx(x)|.

    Args:
        f: a scalar function of one tensor.
        analytic_gradient: the claimed gradient of `f`, a function returning a tensor shaped
            like its input.
        x: the point, any shape (float64 makes a right derivative agree to ~1e-15).

    Returns:
        The error as a Python float; 0.0 for a perfect match. A shape mismatch raises a
        ValueError naming both shapes.
    """
    # BEGIN SOLUTION gradient_error: max |analytic - autograd| at x
    claimed = analytic_gradient(x.detach())
    computed = gradient(f, x)
    if claimed.shape != computed.shape:
        raise ValueError(
            f"gradient_error: the analytic gradient has shape {tuple(claimed.shape)}, "
            f"but the input (and its gradient) has shape {tuple(computed.shape)}"
        )
    return (claimed - computed).abs().max().item()
    # END SOLUTION
    # BEGIN PROMPT
    # You may call `gradient` above for the autograd side. Compare shapes first (raise a
    # ValueError with both when they differ), then return the largest absolute difference
    # as a float (.item()).
    # END PROMPT


class LogSumExp(torch.autograd.Function):
    """log sum_j exp(x_j) over the last axis, with a hand-written backward.

    Forward: (..., n) -> (...). Computed from shifted inputs, m = max_j x_j:
    log sum_j exp(x_j) = m + log sum_j exp(x_j - m), which never overflows.
    Backward: d/dx_j logsumexp(x) = exp(x_j - logsumexp(x)) = softmax(x)_j, so the
    gradient of the input is grad_output[..., None] * softmax(x).

    The forward saves exactly ``(x, result)`` with ``ctx.save_for_backward``; the backward
    reads them from ``ctx.saved_tensors``. Use it as ``LogSumExp.apply(x)``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION LogSumExp.forward: stable log-sum-exp over the last axis; save (x, result)
        shift = x.amax(dim=-1, keepdim=True)  # (..., 1)
        result = shift.squeeze(-1) + torch.log(torch.exp(x - shift).sum(dim=-1))  # (...)
        ctx.save_for_backward(x, result)
        return result
        # END SOLUTION
        # BEGIN PROMPT
        # Subtract the row maximum (x.amax(dim=-1, keepdim=True)) before exp, add it back
        # after the log. Then ctx.save_for_backward(x, result) and return result (...).
        # Inside forward, autograd is off: write the maths with plain tensor operations.
        # END PROMPT

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION LogSumExp.backward: grad_output[..., None] * softmax(x)
        x, result = ctx.saved_tensors
        softmax = torch.exp(x - result.unsqueeze(-1))  # (..., n)
        return grad_output.unsqueeze(-1) * softmax
        # END SOLUTION
        # BEGIN PROMPT
        # x (..., n) and result (...) are in ctx.saved_tensors; grad_output is (...).
        # softmax(x) = exp(x - result[..., None]): no new sum needed. Return dL/dx (..., n).
        # END PROMPT


def two_layer_net_loss(
    x: torch.Tensor,
    target: torch.Tensor,
    params: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, dict]:
    """The forward pass of a two-layer classifier, keeping what its backward pass needs.

        hidden = tanh(x @ w1.T + b1)        (N, H)
        logits = hidden @ w2.T + b2         (N, C)
        loss   = mean cross-entropy of (logits, target)

    Args:
        x: (N, D) inputs.
        target: (N,) class indices in [0, C).
        params: {"w1": (H, D), "b1": (H,), "w2": (C, H), "b2": (C,)}.

    Returns:
        (loss, cache): the scalar loss, and cache = {"x", "target", "w1", "w2", "hidden",
        "probs"} with hidden (N, H) the tanh outputs and probs (N, C) = softmax(logits).
    """
    hidden = torch.tanh(x @ params["w1"].T + params["b1"])  # (N, H)
    logits = hidden @ params["w2"].T + params["b2"]  # (N, C)
    loss = F.cross_entropy(logits, target)
    cache = {
        "x": x,
        "target": target,
        "w1": params["w1"],
        "w2": params["w2"],
        "hidden": hidden,
        "probs": torch.softmax(logits, dim=1),
    }
    return loss, cache


def two_layer_net_backward(cache: dict) -> dict[str, torch.Tensor]:
    """The gradients of `two_layer_net_loss`'s loss, by hand (no autograd).

    Args:
        cache: the dict `two_layer_net_loss` returns (see there for the shapes).

    Returns:
        {"w1", "b1", "w2", "b2"}: dLoss/dparam, each shaped like its parameter.
    """
    # BEGIN SOLUTION two_layer_net_backward: chain rule through cross-entropy, linear, tanh, linear
    x, target, hidden, probs = cache["x"], cache["target"], cache["hidden"], cache["probs"]
    batch = x.shape[0]
    grad_logits = probs.clone()  # (N, C): (softmax - one_hot) / N for a mean loss
    grad_logits[torch.arange(batch), target] -= 1.0
    grad_logits /= batch
    grad_w2 = grad_logits.T @ hidden  # (C, H)
    grad_b2 = grad_logits.sum(dim=0)  # (C,)
    grad_hidden = grad_logits @ cache["w2"]  # (N, H)
    grad_pre = grad_hidden * (1.0 - hidden * hidden)  # tanh' = 1 - tanh^2
    grad_w1 = grad_pre.T @ x  # (H, D)
    grad_b1 = grad_pre.sum(dim=0)  # (H,)
    return {"w1": grad_w1, "b1": grad_b1, "w2": grad_w2, "b2": grad_b2}
    # END SOLUTION
    # BEGIN PROMPT
    # Work backwards from the loss, shapes first. For a mean cross-entropy,
    # dLoss/dlogits = (probs - one_hot(target)) / N. Then the second linear layer
    # (gradients of w2, b2, and of hidden), tanh (d tanh(z)/dz = 1 - tanh(z)^2, and tanh(z)
    # is cache["hidden"]), and the first linear layer. Plain tensor algebra, no .backward().
    # END PROMPT
