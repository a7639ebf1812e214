"""Part 1: SGD with momentum (`dlcc.numpy_nn.optim.SGD`), against torch.optim.SGD.

Parameters are raw arrays with hand-set gradients: no layer is involved.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import check_array, sgd_steps, to_numpy

SHAPES = [(3, 4), (5,), (2, 3, 3, 3)]


def arrays(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    return params, [np.zeros_like(p) for p in params]


def run_both(steps, seed, **hyper):
    """Run the learner's SGD and torch's on the same parameters and gradients."""
    params, _ = arrays(seed)
    rng = np.random.default_rng(seed + 100)
    grads_per_step = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    learner = sgd_steps(params, grads_per_step, **hyper)
    torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    torch_optimizer = torch.optim.SGD(torch_params, **hyper)
    for step, step_grads in enumerate(grads_per_step, start=1):
        for grad, torch_param in zip(step_grads, torch_params, strict=True):
            torch_param.grad = torch.tensor(grad.copy())
        torch_optimizer.step()
        for index, torch_param in enumerate(torch_params):
            check_array(
                f"SGD.step ({hyper}): parameter {index} after step {step}",
                learner["after"][step - 1][index],
                to_numpy(torch_param),
                rtol=1e-9,
                atol=1e-12,
            )


def test_sgd_step_without_momentum():
    params, grads = arrays(0)
    rng = np.random.default_rng(1)
    for grad in grads:
        grad[...] = rng.standard_normal(grad.shape)
    before = [p.copy() for p in params]
    grads_before = [g.copy() for g in grads]
    learner = sgd_steps(params, [grads], lr=0.1)
    for index, param in enumerate(learner["after"][0]):
        assert learner["in_place"][index], (
            f"SGD.step: parameter {index} was replaced; update it in place (param -= ...)"
        )
        assert not np.array_equal(param, before[index]), (
            f"SGD.step: parameter {index} did not change; update it in place (param -= ...): "
            "param = param - ... only rebinds a local name"
        )
        check_array(
            f"SGD.step: parameter {index} after one step (lr=0.1)",
            param,
            before[index] - 0.1 * grads_before[index],
        )
        check_array(
            f"SGD.step: gradient {index} (must not change)",
            learner["grads"][index],
            grads_before[index],
        )
    # float32 parameters stay float32, in place.
    params32, grads32 = arrays(2, np.float32)
    learner32 = sgd_steps(params32, [[np.ones_like(g) for g in grads32]], lr=0.5)
    assert all(p.dtype == np.float32 for p in learner32["after"][0]), (
        "SGD.step: float32 parameters became another dtype"
    )


def test_sgd_momentum_matches_torch():
    run_both(steps=5, seed=3, lr=0.05, momentum=0.9)
    run_both(steps=3, seed=4, lr=0.2, momentum=0.5)
