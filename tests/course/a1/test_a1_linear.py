"""Part 1: the Linear layer (`dlcc.numpy_nn.layers.Linear`), against torch.nn.functional.linear.

Each test grades one region: the backward tests set ``layer.input`` themselves, as the
forward would, so they do not need Linear.forward.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import (
    OracleForward,
    check_array,
    check_dtype,
    check_gradcheck,
    remember_input,
    to_numpy,
    to_torch,
)
from a1_helpers import (
    seed as seed_both,
)

from dlcc.numpy_nn import Linear

# (batch, in_features, out_features, bias)
SHAPES = [(4, 3, 2, True), (1, 5, 7, True), (16, 64, 10, False)]


def make_linear(in_features, out_features, bias, dtype=np.float64, seed=0):
    seed_both(seed)
    return Linear(in_features, out_features, bias=bias, dtype=dtype)


def torch_linear(x, params):
    """(x, weight, bias, output) as torch tensors, from the layer's `params` dict."""
    weight = to_torch(params["weight"], requires_grad=True)
    bias = to_torch(params["bias"], requires_grad=True) if "bias" in params else None
    x_t = to_torch(x, requires_grad=True)
    return x_t, weight, bias, torch.nn.functional.linear(x_t, weight, bias)


def check_forward(batch, in_features, out_features, bias, seed):
    layer = make_linear(in_features, out_features, bias, seed=seed)
    x = np.random.default_rng(seed).standard_normal((batch, in_features))
    out = layer.forward(x)
    _, _, _, expected = torch_linear(x, layer.params)
    check_array("Linear.forward: output", out, to_numpy(expected))


def check_backward(batch, in_features, out_features, bias, seed):
    layer = make_linear(in_features, out_features, bias, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, in_features))
    grad_out = rng.standard_normal((batch, out_features))
    layer.input = x  # what forward keeps
    grad_in = layer.backward(grad_out)

    x_t, weight, bias_t, out = torch_linear(x, layer.params)
    out.backward(to_torch(grad_out))
    check_array("Linear.backward: returned dL/dx", grad_in, to_numpy(x_t.grad))
    check_array('Linear.backward: grads["weight"]', layer.grads["weight"], to_numpy(weight.grad))
    if bias:
        check_array('Linear.backward: grads["bias"]', layer.grads["bias"], to_numpy(bias_t.grad))


def test_linear_forward_matches_torch():
    for seed, shape in enumerate(SHAPES):
        check_forward(*shape, seed=seed)
    # float32 in, float32 out: the models are float32.
    layer = make_linear(6, 3, True, dtype=np.float32)
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    out = layer.forward(x)
    check_dtype("Linear.forward: output", out, np.float32)


def test_linear_backward_matches_torch():
    for seed, shape in enumerate(SHAPES):
        check_backward(*shape, seed=seed)
    layer = make_linear(6, 3, True, dtype=np.float32)
    rng = np.random.default_rng(1)
    layer.input = rng.standard_normal((5, 6)).astype(np.float32)
    grad_in = layer.backward(rng.standard_normal((5, 3)).astype(np.float32))
    check_dtype("Linear.backward: returned dL/dx", grad_in, np.float32)


def test_linear_backward_gradcheck():
    layer = make_linear(5, 4, True, seed=3)

    def forward(x, params):
        return to_numpy(torch_linear(x, params)[3])

    module = OracleForward(layer, forward, remember=remember_input)
    x = np.random.default_rng(3).standard_normal((3, 5))
    check_gradcheck(module, x, "Linear.backward")
