"""Part 2: MaxPool2d (`dlcc.numpy_nn.pooling`), against torch.nn.functional.max_pool2d.

The backward tests set ``layer.input`` themselves, as forward does, so they do not need
MaxPool2d.forward. Inputs come in both memory layouts a network passes around: plain
C-contiguous NCHW (what a loop-based Conv2d returns) and channels-last (NHWC memory
viewed as NCHW, what the reference Conv2d returns).
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import channels_last, check_array, check_dtype, to_numpy, to_torch

from dlcc.numpy_nn import MaxPool2d

# (N, C, H, W, kernel, stride, padding)
PUBLIC_CASES = [
    (2, 3, 8, 8, 2, None, 0),  # the digits CNN's pooling
    (2, 2, 7, 7, 3, 2, 0),  # overlapping windows
    (1, 3, 5, 9, (2, 3), (1, 2), 0),  # rectangular windows, odd sizes
]


def describe(case):
    n, c, h, w, kernel, stride, padding = case
    return f"input ({n}, {c}, {h}, {w}), kernel {kernel}, stride {stride}, padding {padding}"


def torch_pool(x, case, grad_out=None):
    _, _, _, _, kernel, stride, padding = case
    x_t = to_torch(np.ascontiguousarray(x), requires_grad=True)
    out = torch.nn.functional.max_pool2d(x_t, kernel, stride=stride, padding=padding)
    if grad_out is not None:
        out.backward(to_torch(np.ascontiguousarray(grad_out)))
    return out, x_t


def check_forward(case, seed, layout):
    n, c, h, w, kernel, stride, padding = case
    x = layout(np.random.default_rng(seed).standard_normal((n, c, h, w)))
    out = MaxPool2d(kernel, stride=stride, padding=padding).forward(x)
    expected, _ = torch_pool(x, case)
    check_array(f"MaxPool2d.forward: output for {describe(case)}", out, to_numpy(expected))


def check_backward(case, seed, layout, x=None):
    n, c, h, w, kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    x = layout(rng.standard_normal((n, c, h, w)) if x is None else x)
    out_shape = tuple(torch_pool(x, case)[0].shape)
    grad_out = layout(rng.standard_normal(out_shape))
    _, x_t = torch_pool(x, case, grad_out)
    pool = MaxPool2d(kernel, stride=stride, padding=padding)
    pool.input = x  # what forward keeps
    grad_in = pool.backward(grad_out)
    check_array(
        f"MaxPool2d.backward: returned dL/dx for {describe(case)}", grad_in, to_numpy(x_t.grad)
    )


def test_maxpool_forward_matches_torch():
    for seed, case in enumerate(PUBLIC_CASES):
        for layout in (np.ascontiguousarray, channels_last):
            check_forward(case, seed, layout)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    check_dtype("MaxPool2d.forward: output", MaxPool2d(2).forward(x), np.float32)


def test_maxpool_backward_matches_torch():
    for seed, case in enumerate(PUBLIC_CASES):
        for layout in (np.ascontiguousarray, channels_last):
            check_backward(case, seed, layout)
