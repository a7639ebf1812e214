"""Max and average pooling over kh x kw windows.

Both loop over the kh*kw offsets of a window, not over pixels: each step is one
vectorised operation on an (N, C, Ho, Wo) strided view, so a 2x2 pool is four
NumPy calls whatever the image size.
"""

from __future__ import annotations

import numpy as np

from dlcc.numpy_nn.functional import (
    conv_output_size,
    crop_padding,
    pad_channels_last,
    pair,
    window_view,
)
from dlcc.numpy_nn.module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.cache = None  # what MaxPool2d's forward leaves for backward
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(
                f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0"
            )
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{type(self).__name__}: padding {self.padding} must be at most half the "
                f"kernel size {self.kernel_size}, as in PyTorch"
            )

    def _windows(self, x: np.ndarray, fill: float):
        """Check x, pad it (channels-last) and return the (N, Ho, Wo, kh, kw, C) view."""
        shape_ok = isinstance(x, np.ndarray) and x.ndim == 4
        self.check_input(x, "(N, C, H, W)", shape_ok)
        if x.dtype.kind != "f":
            raise ValueError(
                f"{self!r}: expected a float32 or float64 input, got {x.dtype}. "
                "Cast it with x.astype(np.float32)."
            )
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_h = conv_output_size(x.shape[2], kh, sh, ph)
        out_w = conv_output_size(x.shape[3], kw, sw, pw)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"{self!r}: input of {x.shape[2]}x{x.shape[3]} is smaller than the window."
            )
        padded = pad_channels_last(x, self.padding, fill)  # (N, Hp, Wp, C)
        return padded, window_view(padded, self.kernel_size, self.stride)

    def _offsets(self):
        return [(a, b) for a in range(self.kernel_size[0]) for b in range(self.kernel_size[1])]

    def _scatter(self, gradient_at_offset, x_shape, padded_shape, dtype):
        """Sum per-offset gradients back onto the input: the adjoint of the window view.

        ``gradient_at_offset(a, b, out)`` returns the (N, Ho, Wo, C) gradient that flows
        through window offset (a, b), written into ``out`` when ``out`` is not None.
        Offsets are visited in row-major order. Output (N, C, H, W), stored NHWC.
        """
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        _, _, height, width = x_shape
        _, hp, wp, _ = padded_shape
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
        if (sh, sw) == (kh, kw) and (ho * kh, wo * kw) == (hp, wp):
            # Windows tile the input: each pixel gets exactly one write, straight in place.
            grad_padded = np.empty(padded_shape, dtype=dtype)
            for a, b in self._offsets():
                gradient_at_offset(a, b, grad_padded[:, a::sh, b::sw, :])
        else:
            grad_padded = np.zeros(padded_shape, dtype=dtype)
            for a, b in self._offsets():
                window = grad_padded[:, a : a + sh * ho : sh, b : b + sw * wo : sw, :]
                window += gradient_at_offset(a, b, None)
        return crop_padding(grad_padded, self.padding, height, width)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each window. Input (N, C, H, W); output (N, C, Ho, Wo).

    The gradient goes to the first maximum of each window in row-major order, as in
    PyTorch, so ties (common after ReLU) are routed identically.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, "(N, C, H, W)", isinstance(x, np.ndarray) and x.ndim == 4)
        self.input = x  # backward reads it
        # BEGIN SOLUTION MaxPool2d.forward: the maximum of each window
        padded, windows = self._windows(x, fill=-np.inf)
        out = windows[:, :, :, 0, 0, :].copy()  # (N, Ho, Wo, C)
        # Which offset (row-major number k) holds each window's first maximum: a later
        # offset wins only if strictly greater. Backward routes the gradient with it.
        number_type = np.min_scalar_type(len(self._offsets()) - 1)  # uint8 up to 16x16
        first_max = np.zeros(out.shape, dtype=number_type)
        for k, (a, b) in enumerate(self._offsets()[1:], start=1):
            greater = windows[:, :, :, a, b, :] > out
            # first_max = k where greater: k exceeds every earlier number, so a maximum
            # does it (much faster than np.copyto(..., where=greater)).
            np.maximum(first_max, greater * number_type.type(k), out=first_max)
            np.maximum(out, windows[:, :, :, a, b, :], out=out)
        # Backward reuses first_max, which it checks belongs to self.input.
        self.cache = (x, padded.shape, first_max)
        return out.transpose(0, 3, 1, 2)
        # END SOLUTION
        # BEGIN PROMPT
        # x (N, C, H, W) float. self.kernel_size = (kh, kw), self.stride = (sh, sw) and
        # self.padding = (ph, pw) are pairs of ints. Return out (N, C, out_h, out_w) with
        #   out[n, c, i, j] = max over a < kh, b < kw of x_padded[n, c, i*sh + a, j*sw + b]
        # where x_padded has ph rows of -inf above and below and pw columns of -inf left and
        # right, and out_h = (H + 2*ph - kh) // sh + 1 (likewise out_w). Loop over (a, b) or
        # over (i, j) in Python and let NumPy do the rest. Your backward must need nothing
        # from here but self.input (set above): the tests may call it without this forward.
        # END PROMPT

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.require_forward("input")  # a clear error when forward has not run
        # BEGIN SOLUTION MaxPool2d.backward: each window's gradient goes to its first maximum
        x = self.input
        if self.cache is not None and self.cache[0] is x:
            _, padded_shape, first_max = self.cache
        else:  # called without this forward (as the a1 tests do): find the maxima here
            padded, windows = self._windows(x, fill=-np.inf)
            padded_shape = padded.shape
            maxima = windows[:, :, :, 0, 0, :].copy()  # (N, Ho, Wo, C)
            number_type = np.min_scalar_type(len(self._offsets()) - 1)
            first_max = np.zeros(maxima.shape, dtype=number_type)  # as forward computes it
            for k, (a, b) in enumerate(self._offsets()[1:], start=1):
                greater = windows[:, :, :, a, b, :] > maxima
                np.maximum(first_max, greater * number_type.type(k), out=first_max)
                np.maximum(maxima, windows[:, :, :, a, b, :], out=maxima)
        grad_nhwc = grad_out.transpose(0, 2, 3, 1)  # (N, Ho, Wo, C)
        offset_number = {offset: k for k, offset in enumerate(self._offsets())}

        def gradient_at_offset(a, b, out):
            return np.multiply(grad_nhwc, first_max == offset_number[a, b], out=out)

        grad_in = self._scatter(gradient_at_offset, x.shape, padded_shape, grad_out.dtype)
        self.cache = None
        return grad_in
        # END SOLUTION
        # BEGIN PROMPT
        # grad_out (N, C, out_h, out_w), any memory layout; the input is self.input. Each
        # out[n, c, i, j] copied one element of its window, the maximum: that element gets
        # grad_out[n, c, i, j], the others nothing. Windows overlap when the stride is
        # smaller than the kernel: add, do not overwrite. When several elements tie for the
        # maximum, only the first in row-major order (smallest a, then smallest b) gets the
        # gradient, as in PyTorch. Return dL/dx, (N, C, H, W).
        # END PROMPT


class AvgPool2d(_Pool2d):
    """Mean over each window. Input (N, C, H, W); output (N, C, Ho, Wo).

    Zero padding counts towards the mean (PyTorch's ``count_include_pad=True``).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        padded, windows = self._windows(x, fill=0.0)
        out = windows.sum(axis=(3, 4)) * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        self.shapes = (x.shape, padded.shape)  # backward needs only the shapes
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, padded_shape = self.require_forward("shapes")
        share = grad_out.transpose(0, 2, 3, 1) * (
            1.0 / (self.kernel_size[0] * self.kernel_size[1])
        )  # (N, Ho, Wo, C)

        def gradient_at_offset(a, b, out):
            if out is None:
                return share
            out[...] = share
            return out

        return self._scatter(gradient_at_offset, x_shape, padded_shape, grad_out.dtype)
