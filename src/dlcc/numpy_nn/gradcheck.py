"""Numerical gradient checking: does ``backward`` agree with finite differences?

Two kinds of things can be checked, both in float64:

- a `Module`: ``gradcheck(layer, x)`` checks the gradient of the input and of every
  parameter (``named_parameters()``, so containers' children too). Because a module's
  output is an array, the check uses the scalar ``f = sum(forward(x) * upstream)`` with
  a random (seeded) ``upstream``: its gradient is exactly what
  ``backward(upstream)`` returns and accumulates.
- a loss: ``gradcheck(loss_fn, (logits, target))`` checks ``backward()`` against the
  numerical gradient of ``forward(logits, target)`` with respect to the logits.

The numerical gradient uses central differences, ``(f(v + eps) - f(v - eps)) / (2 eps)``,
whose error is O(eps**2) instead of O(eps) for one-sided differences.

Each element is compared with a relative error that has a floor::

    rel_error = |analytic - numerical| / max(|analytic|, |numerical|, atol / rtol)

and the check passes when every ``rel_error <= rtol``, i.e. when
``|analytic - numerical| <= max(rtol * max(|analytic|, |numerical|), atol)``. The floor
keeps gradients that are (nearly) zero, where finite differences are pure noise,
from failing on a relative error of 1e-9 / 1e-10.

Modules that draw random numbers from the library generator (dropout) see the same
random numbers at every forward call: gradcheck restores that generator's state
before each call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .module import Module, default_rng


@dataclass
class GradcheckResult:
    """The outcome of `gradcheck`.

    ok: True when every checked gradient is within tolerance (and, for modules,
        backward adds into ``grads`` rather than overwriting them).
    max_rel_error: the largest relative error over all checked tensors.
    worst: per checked tensor name (``"input"``, ``"weight"``, ``"0.bias"``, ...), its
        largest relative error and the index (tuple) where it occurs.
    values: per tensor, (analytic, numerical) gradient at that worst index.
    problems: other failures found, in words (e.g. grads overwritten, not accumulated).
    """

    ok: bool
    max_rel_error: float
    worst: dict[str, tuple[float, tuple[int, ...]]]
    values: dict[str, tuple[float, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    label: str = ""
    rtol: float = 1e-4

    def failed(self) -> list[str]:
        """Names of the tensors whose gradient is out of tolerance, worst first."""
        bad = [name for name, (error, _) in self.worst.items() if not error <= self.rtol]
        return sorted(bad, key=lambda name: -self.worst[name][0])

    def __str__(self) -> str:
        failed = self.failed()
        if self.ok:
            checked = ", ".join(self.worst)
            return (
                f"{self.label}.backward: gradients match the numerical gradient "
                f"(max rel. error {self.max_rel_error:.1e} over {checked})"
            )
        # The problems name the bug (e.g. "use +=") where a gradient only shows its effect:
        # they come first, as a one-line feedback keeps the start of this text.
        messages = [f"{self.label}.backward: {problem}" for problem in self.problems]
        if failed:
            name = failed[0]
            error, index = self.worst[name]
            analytic, numerical = self.values[name]
            message = (
                f"{self.label}.backward: grad of {name} differs from the numerical gradient, "
                f"max rel. error {error:.1e} at index {index} "
                f"(analytic {analytic:.6g}, numerical {numerical:.6g})"
            )
            others = [f"{other} ({self.worst[other][0]:.1e})" for other in failed[1:]]
            if others:
                message += "; also grad of " + ", ".join(others)
            messages.append(message)
        return "; ".join(messages)


def relative_error(analytic: np.ndarray, numerical: np.ndarray, floor: float) -> np.ndarray:
    """Element-wise ``|a - n| / max(|a|, |n|, floor)``; NaN becomes inf (a failure)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), floor)
    errors = np.abs(analytic - numerical) / scale
    return np.where(np.isnan(errors), np.inf, errors)


def numerical_gradient(
    scalar_fn: Callable[[], float], array: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of ``scalar_fn()`` with respect to ``array``.

    ``array`` is perturbed in place, one element at a time, and restored exactly, so
    ``scalar_fn`` must read it (e.g. a parameter of the module it calls).
    Returns an array shaped like ``array``. Costs 2 * array.size calls.
    """
    flat_indices = np.arange(array.size)
    return _central_differences(scalar_fn, array, flat_indices, eps).reshape(array.shape)


def _central_differences(
    scalar_fn: Callable[[], float], array: np.ndarray, flat_indices: np.ndarray, eps: float
) -> np.ndarray:
    """Numerical gradient at the given flat indices of ``array`` (1-D result)."""
    gradient = np.empty(len(flat_indices), dtype=np.float64)
    for position, flat_index in enumerate(flat_indices):
        index = np.unravel_index(flat_index, array.shape)
        original = array[index]
        array[index] = original + eps
        value_plus = scalar_fn()
        array[index] = original - eps
        value_minus = scalar_fn()
        array[index] = original  # restore exactly, not by subtracting eps again
        gradient[position] = (value_plus - value_minus) / (2 * eps)
    return gradient


def _require_float64(array, what: str, fix: str) -> None:
    if not isinstance(array, np.ndarray):
        raise ValueError(
            f"gradcheck: expected {what} as a NumPy array, got {type(array).__name__}."
        )
    if array.dtype != np.float64:
        raise ValueError(
            f"gradcheck: {what} is {array.dtype}, but gradient checks need float64 "
            f"(finite differences in float32 are mostly rounding noise). {fix}"
        )


def gradcheck(
    target,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    sample: int | None = None,
    seed: int = 0,
    check_accumulation: bool = True,
) -> GradcheckResult:
    """Compare ``target``'s analytic gradients with central differences, in float64.

    target: a `Module` (``forward(x)``, ``backward(grad_out)``, ``params``/``grads``),
        or a loss (``forward(logits, target) -> float``, ``backward() -> grad``).
    inputs: for a module, the input ``x`` (or ``(x,)``); for a loss, ``(logits, target)``.
        Not modified (a copy is perturbed).
    eps: finite-difference step.
    atol, rtol: tolerances; see the module docstring for the relative error used.
    sample: if given, check at most this many random elements per tensor (fast for
        big tensors); None checks every element.
    seed: seeds the random upstream gradient and the sampled indices.
    check_accumulation: for modules with parameters, also check that a second
        backward *adds* to ``grads`` (as torch accumulates ``.grad``).

    Returns a `GradcheckResult`; ``assert result.ok, str(result)`` in tests. Leaves
    the module's parameters unchanged and its grads zeroed.
    Raises ValueError if the module or the inputs are not float64.
    """
    if not rtol > 0 or not atol >= 0 or not eps > 0:
        raise ValueError(
            f"gradcheck: need eps > 0, rtol > 0, atol >= 0; got {eps}, {rtol}, {atol}."
        )
    rng = np.random.default_rng(seed)
    if isinstance(target, Module):
        return _check_module(target, inputs, eps, atol, rtol, sample, rng, check_accumulation)
    if callable(getattr(target, "forward", None)) and callable(getattr(target, "backward", None)):
        return _check_loss(target, inputs, eps, atol, rtol, sample, rng)
    raise ValueError(
        "gradcheck: expected a Module or a loss with forward/backward, got "
        f"{type(target).__name__}."
    )


def _check_module(module, inputs, eps, atol, rtol, sample, rng, check_accumulation):
    label = type(module).__name__
    x = inputs[0] if isinstance(inputs, tuple | list) and len(inputs) == 1 else inputs
    _require_float64(x, "the input", "Pass x.astype(np.float64).")
    named = list(module.named_parameters())
    for name, param, _ in named:
        _require_float64(
            param, f"parameter '{name}' of {label}", "Build the module with dtype=np.float64."
        )
    x = x.copy()  # perturbed in place below; the caller's array is left alone

    # Dropout-like modules draw from the library generator: give every forward the same draws.
    generator_state = default_rng().bit_generator.state

    def run_forward() -> np.ndarray:
        default_rng().bit_generator.state = generator_state
        return module.forward(x)

    output = run_forward()
    upstream = rng.standard_normal(np.shape(output))  # the random direction dLoss/dOutput

    def objective() -> float:
        return float(np.sum(run_forward() * upstream))

    module.zero_grad()  # backward accumulates: start from zero
    grad_input = module.backward(upstream.copy())
    if not isinstance(grad_input, np.ndarray) or grad_input.shape != x.shape:
        received = grad_input.shape if isinstance(grad_input, np.ndarray) else type(grad_input)
        raise ValueError(
            f"gradcheck: {label}.backward must return dLoss/dInput of the input's shape "
            f"{x.shape}, got {received}."
        )
    analytic = {"input": grad_input.astype(np.float64, copy=True)}
    analytic.update({name: grad.copy() for name, _, grad in named})
    tensors = {"input": x, **{name: param for name, param, _ in named}}
    # `grads[name] = ...` instead of `+=` leaves the arrays the optimiser holds at zero.
    now = {name: grad for name, _, grad in module.named_parameters()}
    replaced = [name for name, _, grad in named if now.get(name) is not grad]

    result = _compare(tensors, analytic, objective, eps, atol, rtol, sample, rng, label)
    if replaced:
        result.problems.append(
            f"use += for the grads: grads[{replaced[0]!r}] was assigned a new array instead of "
            "added to, so the array the optimiser holds stays 0 (as torch accumulates .grad, "
            "backward adds into grads)"
        )
        result.ok = False

    if check_accumulation and named and not replaced:
        # A second forward/backward without zero_grad must double every grad.
        module.zero_grad()
        for _ in range(2):
            run_forward()
            module.backward(upstream.copy())
        for name, _, grad in named:
            expected = 2 * analytic[name]
            errors = relative_error(grad, expected, atol / rtol)
            if errors.size and errors.max() > rtol:
                result.problems.append(
                    f"grad of {name} is overwritten instead of accumulated: after two "
                    f"backward calls it should be twice one call's (use +=, as torch "
                    f"accumulates .grad)"
                )
        result.ok = result.ok and not result.problems
    module.zero_grad()
    default_rng().bit_generator.state = generator_state
    return result


def _check_loss(loss, inputs, eps, atol, rtol, sample, rng):
    label = type(loss).__name__
    if not (isinstance(inputs, tuple | list) and len(inputs) == 2):
        raise ValueError(
            f"gradcheck: for a loss, pass inputs=(logits, target); got {type(inputs)}."
        )
    logits, target = inputs
    _require_float64(logits, "the logits", "Pass logits.astype(np.float64).")
    logits = logits.copy()

    def objective() -> float:
        return float(loss.forward(logits, target))

    objective()
    grad_logits = loss.backward()
    if not isinstance(grad_logits, np.ndarray) or grad_logits.shape != logits.shape:
        received = grad_logits.shape if isinstance(grad_logits, np.ndarray) else type(grad_logits)
        raise ValueError(
            f"gradcheck: {label}.backward must return dLoss/dLogits of shape {logits.shape}, "
            f"got {received}."
        )
    analytic = {"input": grad_logits.astype(np.float64, copy=True)}
    return _compare({"input": logits}, analytic, objective, eps, atol, rtol, sample, rng, label)


def _compare(tensors, analytic, objective, eps, atol, rtol, sample, rng, label):
    """Numerical gradients of ``objective`` for each tensor, compared with ``analytic``."""
    worst, values = {}, {}
    for name, array in tensors.items():
        if array.size == 0:
            continue
        if sample is not None and array.size > sample:
            flat_indices = np.sort(rng.choice(array.size, size=sample, replace=False))
        else:
            flat_indices = np.arange(array.size)
        numerical = _central_differences(objective, array, flat_indices, eps)
        analytic_values = analytic[name].reshape(-1)[flat_indices]
        errors = relative_error(analytic_values, numerical, atol / rtol)
        position = int(np.argmax(errors))
        index = tuple(int(i) for i in np.unravel_index(flat_indices[position], array.shape))
        worst[name] = (float(errors[position]), index)
        values[name] = (float(analytic_values[position]), float(numerical[position]))
    max_rel_error = max((error for error, _ in worst.values()), default=0.0)
    return GradcheckResult(
        ok=bool(max_rel_error <= rtol),
        max_rel_error=max_rel_error,
        worst=worst,
        values=values,
        label=label,
        rtol=rtol,
    )
