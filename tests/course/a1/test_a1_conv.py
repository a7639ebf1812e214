"""Part 2: Conv2d (`dlcc.numpy_nn.conv`), against torch.nn.functional.conv2d.

The backward tests set ``layer.input`` themselves, as forward does, so they do not need
Conv2d.forward; the gradient check takes its forward from PyTorch.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import (
    OracleForward,
    channels_last,
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

from dlcc.numpy_nn import Conv2d

# (N, C_in, H, W, C_out, kernel, stride, padding, bias)
PUBLIC_CASES = [
    (2, 1, 8, 8, 4, 3, 1, 1, True),  # the digits CNN's first layer
    (3, 3, 6, 6, 5, 3, 1, 0, True),
    (2, 4, 7, 7, 3, 3, 2, 1, True),
    (1, 2, 5, 5, 2, 1, 1, 0, True),  # a 1x1 convolution
]


def make_conv(c_in, c_out, kernel, stride, padding, bias, dtype=np.float64, seed=0):
    seed_both(seed)
    return Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias, dtype=dtype)


def torch_conv(x, params, stride, padding, requires_grad=False):
    x_t = to_torch(x, requires_grad)
    weight = to_torch(params["weight"], requires_grad)
    bias = to_torch(params["bias"], requires_grad) if "bias" in params else None
    out = torch.nn.functional.conv2d(x_t, weight, bias, stride=stride, padding=padding)
    return x_t, weight, bias, out


def describe(case):
    n, c_in, h, w, c_out, kernel, stride, padding, bias = case
    return (
        f"input ({n}, {c_in}, {h}, {w}), {c_out} filters, kernel {kernel}, stride {stride}, "
        f"padding {padding}, bias={bias}"
    )


def check_forward(case, seed, layout=np.ascontiguousarray):
    n, c_in, h, w, c_out, kernel, stride, padding, bias = case
    conv = make_conv(c_in, c_out, kernel, stride, padding, bias, seed=seed)
    x = layout(np.random.default_rng(seed).standard_normal((n, c_in, h, w)))
    out = conv.forward(x)
    _, _, _, expected = torch_conv(x, conv.params, conv.stride, conv.padding)
    check_array(f"Conv2d.forward: output for {describe(case)}", out, to_numpy(expected))


def check_backward(case, seed, layout=np.ascontiguousarray):
    n, c_in, h, w, c_out, kernel, stride, padding, bias = case
    conv = make_conv(c_in, c_out, kernel, stride, padding, bias, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    x_t, weight, bias_t, out = torch_conv(x, conv.params, conv.stride, conv.padding, True)
    grad_out = rng.standard_normal(tuple(out.shape))
    out.backward(to_torch(grad_out))

    conv.input = layout(x)  # what forward keeps
    grad_out = layout(grad_out)
    grad_in = conv.backward(grad_out)
    check_array(
        f"Conv2d.backward: returned dL/dx for {describe(case)}", grad_in, to_numpy(x_t.grad)
    )
    check_array(
        f'Conv2d.backward: grads["weight"] for {describe(case)}',
        conv.grads["weight"],
        to_numpy(weight.grad),
    )
    if bias:
        check_array(
            f'Conv2d.backward: grads["bias"] for {describe(case)}',
            conv.grads["bias"],
            to_numpy(bias_t.grad),
        )


def test_conv_forward_matches_torch():
    for seed, case in enumerate(PUBLIC_CASES):
        check_forward(case, seed)
    # Any memory layout: a channels-last input is what a MaxPool2d may pass on.
    check_forward(PUBLIC_CASES[2], 9, channels_last)
    conv = make_conv(1, 4, 3, 1, 1, True, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    check_dtype("Conv2d.forward: output", conv.forward(x), np.float32)


def test_conv_backward_matches_torch():
    for seed, case in enumerate(PUBLIC_CASES):
        check_backward(case, seed)
    check_backward(PUBLIC_CASES[2], 9, channels_last)  # input and grad_out stored NHWC
    conv = make_conv(2, 3, 3, 1, 1, True, dtype=np.float32)
    rng = np.random.default_rng(0)
    conv.input = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    grad_in = conv.backward(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    check_dtype("Conv2d.backward: returned dL/dx", grad_in, np.float32)


def test_conv_backward_gradcheck():
    conv = make_conv(2, 3, 3, 2, 1, True, seed=5)

    def forward(x, params):
        return to_numpy(torch_conv(x, params, conv.stride, conv.padding)[3])

    module = OracleForward(conv, forward, remember_input)
    x = np.random.default_rng(5).standard_normal((2, 2, 5, 5))
    check_gradcheck(module, x, "Conv2d.backward")
