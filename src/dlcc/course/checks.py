"""Comparisons for assignments' graded tests, with one specific line of feedback each.

The torch assignments' tests share them (`from dlcc.course.checks import check_close`):
the package is in both of a grading's processes, so a helper module that runs on the
learner's side may use them too.
"""

from __future__ import annotations

import torch


def check_close(what: str, actual, expected: torch.Tensor, rtol=1e-7, atol=1e-10) -> None:
    """Fail with one specific line unless `actual` is a tensor like `expected` (shape,
    values within atol + rtol * |expected|). The worst index is reported."""
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(
            f"{what}: a tensor of shape {tuple(expected.shape)} expected, got "
            f"{type(actual).__name__}"
        )
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what}: shape {tuple(expected.shape)} expected, got {tuple(actual.shape)}"
        )
    actual = actual.detach().to(torch.float64)
    expected = expected.detach().to(torch.float64)
    difference = (actual - expected).abs()
    scaled = difference / (atol + rtol * expected.abs())
    scaled = torch.where(torch.isnan(scaled), torch.full_like(scaled, torch.inf), scaled)
    if scaled.numel() and scaled.max() > 1.0:
        flat = int(scaled.argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), scaled.shape))
        raise AssertionError(
            f"{what} differs from the expected value: max abs. error "
            f"{difference[index]:.1e} at index {index} (got {actual[index]:.6g}, "
            f"expected {expected[index]:.6g})"
        )


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """Standard normal float64 values of `shape` (() for a scalar), from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)
