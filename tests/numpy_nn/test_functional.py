"""Properties of the im2col machinery, checked on shapes drawn by hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcc.numpy_nn.functional import (
    col2im,
    col2im_matmul,
    conv_output_size,
    im2col,
    pad_channels_last,
    window_view,
)


@st.composite
def unfold_problems(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    height = draw(st.integers(kernel[0], 9))
    width = draw(st.integers(kernel[1], 9))
    shape = (draw(st.integers(1, 3)), height, width, draw(st.integers(1, 4)))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, kernel, stride, np.random.default_rng(seed)


@settings(max_examples=150, deadline=None)
@given(unfold_problems())
def test_col2im_is_the_adjoint_of_im2col(problem):
    """<im2col(x), y> == <x, col2im(y)> for all x, y: col2im is im2col's transpose,
    which is exactly why it is the right backward pass."""
    shape, kernel, stride, rng = problem
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride)
    y = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * y)
    rhs = np.sum(x * col2im(y, shape, kernel, stride))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(unfold_problems())
def test_im2col_rows_are_the_receptive_fields(problem):
    shape, kernel, stride, rng = problem
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride)
    n, height, width, channels = shape
    out_h = conv_output_size(height, kernel[0], stride[0], 0)
    out_w = conv_output_size(width, kernel[1], stride[1], 0)
    assert cols.shape == (n * out_h * out_w, kernel[0] * kernel[1] * channels)
    row = rng.integers(cols.shape[0])
    image, rest = divmod(row, out_h * out_w)
    i, j = divmod(rest, out_w)
    field = x[
        image,
        i * stride[0] : i * stride[0] + kernel[0],
        j * stride[1] : j * stride[1] + kernel[1],
        :,
    ]
    np.testing.assert_array_equal(cols[row], field.reshape(-1))


@settings(max_examples=100, deadline=None)
@given(unfold_problems(), st.integers(1, 5))
def test_col2im_matmul_equals_the_two_step_version(problem, out_channels):
    shape, kernel, stride, rng = problem
    cols = im2col(rng.standard_normal(shape), kernel, stride)
    grad_rows = rng.standard_normal((cols.shape[0], out_channels))
    weight_cols = rng.standard_normal((cols.shape[1], out_channels))
    np.testing.assert_allclose(
        col2im_matmul(grad_rows, weight_cols, shape, kernel, stride),
        col2im(grad_rows @ weight_cols.T, shape, kernel, stride),
        rtol=1e-10,
        atol=1e-10,
    )


def test_window_view_is_a_view_not_a_copy():
    x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    windows = window_view(x, (3, 3), (1, 1))
    assert windows.shape == (2, 3, 3, 3, 3, 3)
    assert np.shares_memory(windows, x)


def test_padding_keeps_values_and_stores_channels_last():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    padded = pad_channels_last(x, (1, 2))
    assert padded.shape == (2, 6, 9, 3) and padded.flags.c_contiguous
    np.testing.assert_array_equal(padded[:, 1:5, 2:7, :], x.transpose(0, 2, 3, 1))
    assert not padded[:, 0].any() and not padded[:, :, :2].any()
