"""Stateless building blocks for convolution and pooling: window views, im2col, col2im.

Memory layout, the one idea that makes this library fast
---------------------------------------------------------
Arrays are *indexed* NCHW, as in PyTorch, but image activations are *stored*
channels-last (NHWC) whenever this library makes them. A NumPy array's shape and
its memory order are independent: ``a.transpose(0, 3, 1, 2)`` of an NHWC buffer
is an NCHW array without a copy. Channels-last is what convolution wants: one
output pixel's receptive field is ``kh`` runs of ``kw * C`` consecutive floats, so
im2col is a fast block copy, and the GEMM's (N*Ho*Wo, O) result *is* NHWC, so the
output needs no transpose either. Element-wise layers (ReLU, ...) keep whatever
layout they receive (NumPy ufuncs use ``order="K"``), so the layout flows through
a network untouched. Callers never see any of this: shapes are always NCHW.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pair(value: int | tuple[int, int], name: str = "value") -> tuple[int, int]:
    """Turn ``3`` into ``(3, 3)``; pass ``(3, 5)`` through; reject anything else."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis of a convolution or pooling (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """View an NCHW array as NHWC, copying only if its memory is not already NHWC.

    Input (N, C, H, W) indexed; output (N, H, W, C) indexed and C-contiguous.
    """
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def pad_channels_last(
    x: np.ndarray, padding: tuple[int, int], fill: float = 0.0, workspace: dict | None = None
) -> np.ndarray:
    """Pad H and W of an NCHW array into an NHWC buffer.

    Input (N, C, H, W); output (N, H + 2*ph, W + 2*pw, C), C-contiguous.
    Without padding this is just `to_channels_last`. With a ``workspace`` dict the
    buffer is kept there and reused by the next call of the same shape: its border
    is already filled, so only the interior is written.
    """
    pad_h, pad_w = padding
    if pad_h == 0 and pad_w == 0:
        return to_channels_last(x)
    n, c, h, w = x.shape
    shape = (n, h + 2 * pad_h, w + 2 * pad_w, c)
    padded = reusable_buffer(workspace, "padded", shape, x.dtype, fill)
    padded[:, pad_h : pad_h + h, pad_w : pad_w + w, :] = x.transpose(0, 2, 3, 1)
    return padded


def reusable_buffer(workspace: dict | None, name: str, shape, dtype, fill=None) -> np.ndarray:
    """An internal scratch array, reused across calls while shape and dtype match.

    Large temporaries cost page faults every time they are freshly allocated; a layer
    that keeps its scratch arrays avoids that. Never return such a buffer to a caller.
    ``fill`` initialises a new buffer (the caller must keep that part unchanged).
    """
    key = (name, fill)
    buffer = None if workspace is None else workspace.get(key)
    if buffer is None or buffer.shape != tuple(shape) or buffer.dtype != dtype:
        buffer = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        if workspace is not None:
            workspace[key] = buffer
    return buffer


def window_view(x_nhwc: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """All sliding windows of a (padded) NHWC array, as a read-only view.

    Input (N, Hp, Wp, C); output (N, Ho, Wo, kh, kw, C) where
    ``output[n, i, j, a, b, c] == x_nhwc[n, i*sh + a, j*sw + b, c]``. No copy.
    """
    n, hp, wp, c = x_nhwc.shape
    kh, kw = kernel
    sh, sw = stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    s_n, s_h, s_w, s_c = x_nhwc.strides
    return as_strided(
        x_nhwc,
        shape=(n, ho, wo, kh, kw, c),
        strides=(s_n, s_h * sh, s_w * sw, s_h, s_w, s_c),
        writeable=False,
    )


def im2col(
    x_nhwc: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    workspace: dict | None = None,
) -> np.ndarray:
    """Unfold every receptive field of a padded NHWC array into one row.

    Input (N, Hp, Wp, C); output (N*Ho*Wo, kh*kw*C), columns ordered (kh, kw, C).
    This is the one copy a convolution's forward pass makes (into ``workspace``'s
    reusable buffer when one is given).

    The copy is fastest when it moves long contiguous runs. Row-major, a run is one
    kernel row of a field (kw*C floats: 96 for 32 channels); column-major, it is one
    image row (Wo floats). With few channels (a first layer) the column-major buffer
    wins, and the result is then its transpose: same (M, K) shape and values, and BLAS
    multiplies a transposed matrix as fast.
    """
    windows = window_view(x_nhwc, kernel, stride)  # (N, Ho, Wo, kh, kw, C)
    n, ho, wo, kh, kw, c = windows.shape
    if kw * c < wo:
        cols_t = reusable_buffer(workspace, "cols_t", (kh * kw * c, n * ho * wo), x_nhwc.dtype)
        cols_t.reshape(kh, kw, c, n, ho, wo)[...] = windows.transpose(3, 4, 5, 0, 1, 2)
        return cols_t.T
    cols = reusable_buffer(workspace, "cols", (n * ho * wo, kh * kw * c), x_nhwc.dtype)
    cols.reshape(windows.shape)[...] = windows
    return cols


def col2im(
    cols: np.ndarray,
    padded_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """The adjoint of `im2col`: scatter-add rows back onto the padded image.

    Input (N*Ho*Wo, kh*kw*C); output (N, Hp, Wp, C). Overlapping windows add up,
    which is exactly the gradient of the copy that `im2col` made.
    """
    n, hp, wp, c = padded_shape
    kh, kw = kernel
    sh, sw = stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols6 = cols.reshape(n, ho, wo, kh, kw, c)
    image = np.zeros(padded_shape, dtype=cols.dtype)
    # kh*kw strided adds of (N, Ho, Wo, C) slabs: few Python steps, all work in C.
    for a in range(kh):
        for b in range(kw):
            image[:, a : a + sh * ho : sh, b : b + sw * wo : sw, :] += cols6[:, :, :, a, b, :]
    return image


def crop_padding(x_nhwc: np.ndarray, padding: tuple[int, int], height: int, width: int):
    """Drop the padding of an NHWC array and view it as NCHW: (N, C, H, W), no copy."""
    pad_h, pad_w = padding
    return x_nhwc[:, pad_h : pad_h + height, pad_w : pad_w + width, :].transpose(0, 3, 1, 2)


def col2im_matmul(
    grad_rows: np.ndarray,
    weight_cols: np.ndarray,
    padded_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """``col2im(grad_rows @ weight_cols.T, ...)``, computed one kernel offset at a time.

    grad_rows (N*Ho*Wo, C_out); weight_cols (kh*kw*C_in, C_out); output (N, Hp, Wp, C_in).
    Same result as the two-step version, but each offset's product is a contiguous
    (N, Ho, Wo, C_in) block, so the scatter-add streams through memory instead of
    hopping across the (N*Ho*Wo, kh*kw*C_in) matrix: about 2x faster here.
    """
    n, hp, wp, c_in = padded_shape
    kh, kw = kernel
    sh, sw = stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    weight_per_offset = weight_cols.reshape(kh, kw, c_in, -1)  # (kh, kw, C_in, C_out)
    image = np.zeros(padded_shape, dtype=grad_rows.dtype)
    for a in range(kh):
        for b in range(kw):
            # (np.matmul with out= is slower here than a fresh result: it skips BLAS.)
            block = grad_rows @ weight_per_offset[a, b].T  # (N*Ho*Wo, C_in)
            image[:, a : a + sh * ho : sh, b : b + sw * wo : sw, :] += block.reshape(
                n, ho, wo, c_in
            )
    return image


def sum_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix.sum(axis=0)`` for a tall (M, K) matrix, as one BLAS matrix-vector product.

    Output (K,). Used for bias gradients; ten times faster here than NumPy's reduction
    on (50176, 32), with the same float32 accumulation.
    """
    return np.ones(matrix.shape[0], dtype=matrix.dtype) @ matrix
