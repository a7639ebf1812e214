"""Part 1: ReLU and Sigmoid (`dlcc.numpy_nn.layers`), against PyTorch.

The backward tests set what forward keeps (``mask``, ``output``) themselves, so each
test grades one region.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import OracleForward, check_array, check_dtype, check_gradcheck, to_numpy, to_torch

from dlcc.numpy_nn import ReLU, Sigmoid


def sample(shape, seed, dtype=np.float64):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    x.flat[::7] = 0.0  # exact zeros: ReLU's derivative there is 0, as in PyTorch
    return x


def test_relu_forward():
    for seed, shape in enumerate([(4, 5), (2, 3, 4, 4)]):
        x = sample(shape, seed)
        out = ReLU().forward(x)
        check_array("ReLU.forward: output", out, np.maximum(x, 0.0))
    relu = ReLU()
    x = sample((3, 6), 2, np.float32)
    check_dtype("ReLU.forward: output", relu.forward(x), np.float32)
    mask = getattr(relu, "mask", None)
    assert mask is not None, "ReLU.forward: self.mask is not set; backward needs it"
    check_array("ReLU.forward: self.mask", np.asarray(mask, dtype=np.float64), (x > 0) * 1.0)


def test_relu_backward():
    for seed, shape in enumerate([(4, 5), (2, 3, 4, 4)]):
        x = sample(shape, seed)
        grad_out = np.random.default_rng(seed + 10).standard_normal(shape)
        relu = ReLU()
        relu.mask = x > 0  # what forward keeps
        grad_in = relu.backward(grad_out)
        x_t = to_torch(x, requires_grad=True)
        torch.relu(x_t).backward(to_torch(grad_out))
        check_array("ReLU.backward: returned dL/dx", grad_in, to_numpy(x_t.grad))


def test_sigmoid_forward():
    x = sample((5, 7), 3)
    x[0, :3] = [-1000.0, 1000.0, -745.0]  # np.exp(1000) overflows: the result must not
    sigmoid = Sigmoid()
    with np.errstate(over="ignore", under="ignore"):
        out = sigmoid.forward(x)
    check_array("Sigmoid.forward: output", out, to_numpy(torch.sigmoid(to_torch(x))))
    kept = getattr(sigmoid, "output", None)
    assert kept is not None, "Sigmoid.forward: self.output is not set; backward needs it"
    check_array("Sigmoid.forward: self.output", kept, to_numpy(torch.sigmoid(to_torch(x))))
    x32 = sample((3, 4), 4, np.float32)
    check_dtype("Sigmoid.forward: output", Sigmoid().forward(x32), np.float32)


def test_sigmoid_backward():
    x = sample((4, 6), 5)
    grad_out = np.random.default_rng(6).standard_normal(x.shape)
    sigmoid = Sigmoid()
    sigmoid.output = to_numpy(torch.sigmoid(to_torch(x)))  # what forward keeps
    grad_in = sigmoid.backward(grad_out)
    x_t = to_torch(x, requires_grad=True)
    torch.sigmoid(x_t).backward(to_torch(grad_out))
    check_array("Sigmoid.backward: returned dL/dx", grad_in, to_numpy(x_t.grad))

    def forward(x, params):
        return to_numpy(torch.sigmoid(to_torch(x)))

    def remember(layer, x, output):
        layer.output = output

    module = OracleForward(Sigmoid(), forward, remember)
    check_gradcheck(module, sample((3, 4), 7), "Sigmoid.backward")
