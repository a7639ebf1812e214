"""2-D convolution as one matrix product (im2col + GEMM), channels-last inside.

See `dlcc.numpy_nn.functional` for why activations are stored NHWC while every
shape you see is NCHW.
"""

from __future__ import annotations

import numpy as np

from dlcc.numpy_nn.functional import (
    col2im_matmul,
    conv_output_size,
    crop_padding,
    im2col,
    pad_channels_last,
    pair,
    sum_rows,
)
from dlcc.numpy_nn.layers import uniform_init
from dlcc.numpy_nn.module import Module, check_dtype


class Conv2d(Module):
    """Cross-correlation of an image batch with ``out_channels`` filters.

    Input (N, C_in, H, W); output (N, C_out, Ho, Wo) with
    ``Ho = (H + 2*padding - kernel_size) // stride + 1`` (likewise Wo).
    Parameters: weight (C_out, C_in, kh, kw), bias (C_out,), as in torch.nn.Conv2d.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(
                f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                f"kernel_size={kernel_size}, stride={stride}, padding={padding}"
            )
        self.dtype = check_dtype(dtype)
        self.workspace: dict = {}  # scratch arrays reused across steps (see reusable_buffer)
        self.cache = None  # what forward leaves for backward
        kh, kw = self.kernel_size
        fan_in = in_channels * kh * kw
        self.add_param(
            "weight", uniform_init((out_channels, in_channels, kh, kw), fan_in, self.dtype)
        )
        if bias:
            self.add_param("bias", uniform_init((out_channels,), fan_in, self.dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape_ok = isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[1] == self.in_channels
        self.check_input(x, f"(N, {self.in_channels}, H, W)", shape_ok)
        n, _, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_h = conv_output_size(height, kh, sh, ph)
        out_w = conv_output_size(width, kw, sw, pw)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"{self!r}: input of {height}x{width} is smaller than the kernel "
                f"{kh}x{kw} after padding {ph}x{pw}; give a larger image or more padding."
            )
        self.input = x  # backward reads it

        # BEGIN SOLUTION Conv2d.forward: cross-correlate x with each filter, add its bias
        padded = pad_channels_last(x, self.padding, workspace=self.workspace)  # (N, Hp, Wp, C_in)
        cols = im2col(padded, self.kernel_size, self.stride, self.workspace)  # (N*Ho*Wo, K)
        # The weight, reordered to match the (kh, kw, C_in) columns: (kh*kw*C_in, C_out).
        weight_cols = self.params["weight"].transpose(2, 3, 1, 0).reshape(-1, self.out_channels)
        out_rows = cols @ weight_cols  # (N*Ho*Wo, C_out): NHWC memory
        if "bias" in self.params:
            out_rows += self.params["bias"]

        # Backward reuses the columns, which it checks belong to self.input.
        self.cache = (x, padded.shape, cols, weight_cols)
        return out_rows.reshape(n, out_h, out_w, self.out_channels).transpose(0, 3, 1, 2)
        # END SOLUTION
        # BEGIN PROMPT
        # x (N, C_in, H, W); self.params["weight"] (C_out, C_in, kh, kw); self.params["bias"]
        # (C_out,), absent with bias=False. kh, kw, sh, sw (stride), ph, pw (padding), out_h
        # and out_w are set above. Return out (N, C_out, out_h, out_w), x's dtype:
        #   out[n, o, i, j] = bias[o] + sum over c, a, b of
        #                     weight[o, c, a, b] * x_padded[n, c, i*sh + a, j*sw + b]
        # with x_padded = x with ph rows of zeros above and below and pw columns left and
        # right (np.pad). Python loops over the kernel offsets (a, b) or over the output
        # positions (i, j) are fine; do the batch and channel sums with NumPy (np.einsum,
        # np.tensordot or @), not with loops. Your backward must need nothing from here but
        # self.input (set above): the tests may call it without this forward.
        # END PROMPT

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.require_forward("input")  # a clear error when forward has not run
        # BEGIN SOLUTION Conv2d.backward: add dL/dweight, dL/dbias to grads, return dL/dx
        x = self.input
        if self.cache is not None and self.cache[0] is x:
            _, padded_shape, cols, weight_cols = self.cache
        else:  # called without this forward (as the a1 tests do): unfold the input here
            padded = pad_channels_last(x, self.padding, workspace=self.workspace)
            padded_shape = padded.shape
            cols = im2col(padded, self.kernel_size, self.stride, self.workspace)
            weight_cols = self.params["weight"].transpose(2, 3, 1, 0).reshape(-1, self.out_channels)
        _, c_in, height, width = x.shape
        kh, kw = self.kernel_size
        # (N, C_out, Ho, Wo) -> (N*Ho*Wo, C_out); free when grad_out is stored NHWC.
        grad_rows = grad_out.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)

        # (kh*kw*C_in, C_out). OpenBLAS is about 2x faster on the transposed product when
        # kh*kw*C_in is the smaller side (a first layer with one input channel).
        if cols.shape[1] < grad_rows.shape[1]:
            grad_weight_cols = (grad_rows.T @ cols).T
        else:
            grad_weight_cols = cols.T @ grad_rows
        self.grads["weight"] += grad_weight_cols.reshape(kh, kw, c_in, -1).transpose(3, 2, 0, 1)
        if "bias" in self.params:
            self.grads["bias"] += sum_rows(grad_rows)

        if not self.needs_input_grad:
            self.cache = None
            return None
        # col2im(grad_rows @ weight_cols.T): (N, Hp, Wp, C_in)
        grad_padded = col2im_matmul(
            grad_rows, weight_cols, padded_shape, self.kernel_size, self.stride
        )
        self.cache = None
        return crop_padding(grad_padded, self.padding, height, width)  # (N, C_in, H, W)
        # END SOLUTION
        # BEGIN PROMPT
        # grad_out is dL/dout, (N, C_out, out_h, out_w), in any memory layout; the input is
        # self.input (N, C_in, H, W). Each weight[o, c, a, b] multiplied x_padded[n, c,
        # i*sh + a, j*sw + b] into out[n, o, i, j]: send grad_out back along the same paths.
        # ADD dL/dweight to self.grads["weight"] and dL/dbias to self.grads["bias"]
        # (+=, not =). Return dL/dx (N, C_in, H, W): the gradient of x_padded, without the
        # padding. (You may return None when self.needs_input_grad is False.)
        # END PROMPT

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={'bias' in self.params}"
        )
