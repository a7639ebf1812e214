"""Helpers shared by the numpy_nn tests (imported by name: tests/numpy_nn is on sys.path)."""

from __future__ import annotations

import numpy as np


class DtypeRecorder(np.ndarray):
    """An ndarray that records the dtype of every ufunc operand and result it meets."""

    seen: set = set()  # noqa: RUF012 - shared on purpose, read by the test

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [a.view(np.ndarray) if isinstance(a, DtypeRecorder) else a for a in inputs]
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(o.view(np.ndarray) for o in outs)
        result = getattr(ufunc, method)(*plain, **kwargs)
        for value in [*plain, result]:
            DtypeRecorder.seen.add(getattr(value, "dtype", type(value).__name__))
        if outs:
            return outs[0]
        return result.view(DtypeRecorder) if isinstance(result, np.ndarray) else result
