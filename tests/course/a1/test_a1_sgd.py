"""Part 1: SGD with momentum (`dlcc.numpy_nn.optim.SGD`), against torch.optim.SGD.

Parameters are raw arrays with hand-set gradients: no layer is involved.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import check_array, to_numpy

from dlcc.numpy_nn import SGD

SHAPES = [(3, 4), (5,), (2, 3, 3, 3)]


def arrays(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    return params, [np.zeros_like(p) for p in params]


def run_both(steps, seed, **hyper):
    """Run the learner's SGD and torch's on the same parameters and gradients."""
    params, grads = arrays(seed)
    optimizer = SGD(list(zip(params, grads, strict=True)), **hyper)
    torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    torch_optimizer = torch.optim.SGD(torch_params, **hyper)
    rng = np.random.default_rng(seed + 100)
    for step in range(1, steps + 1):
        for grad, torch_param in zip(grads, torch_params, strict=True):
            grad[...] = rng.standard_normal(grad.shape)
            torch_param.grad = torch.tensor(grad.copy())
        optimizer.step()
        torch_optimizer.step()
        for index, (param, torch_param) in enumerate(zip(params, torch_params, strict=True)):
            check_array(
                f"SGD.step ({hyper}): parameter {index} after step {step}",
                param,
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
    same_arrays = list(params)
    SGD(list(zip(params, grads, strict=True)), lr=0.1).step()
    for index, param in enumerate(params):
        assert param is same_arrays[index], (
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
            f"SGD.step: gradient {index} (must not change)", grads[index], grads_before[index]
        )
    # float32 parameters stay float32, in place.
    params32, grads32 = arrays(2, np.float32)
    for grad in grads32:
        grad[...] = 1.0
    SGD(list(zip(params32, grads32, strict=True)), lr=0.5).step()
    assert all(p.dtype == np.float32 for p in params32), (
        "SGD.step: float32 parameters became another dtype"
    )


def test_sgd_momentum_matches_torch():
    run_both(steps=5, seed=3, lr=0.05, momentum=0.9)
    run_both(steps=3, seed=4, lr=0.2, momentum=0.5)
