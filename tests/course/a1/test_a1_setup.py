"""Part 0: set-up. Is this machine ready for the course?

These tests need no solution region: they pass once the environment is right.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np


def test_python_is_recent():
    found = ".".join(str(part) for part in sys.version_info[:3])
    assert sys.version_info >= (3, 10), (
        f"set-up: Python 3.10 or newer expected, found {found}; make a new environment "
        "(handout, Part 0)"
    )


def test_numpy_uses_a_blas():
    if importlib.util.find_spec("threadpoolctl") is None:
        raise AssertionError(
            "set-up: threadpoolctl is missing, so NumPy's BLAS cannot be checked; "
            "run `pip install threadpoolctl` (or `make install`)"
        )
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 48)), rng.standard_normal((48, 32))
    product = a @ b  # loads NumPy's BLAS, so threadpoolctl can see it
    expected = np.einsum("ik,kj->ij", a, b)  # no BLAS
    assert np.allclose(product, expected), (
        "set-up: NumPy's matrix product gives wrong answers; reinstall NumPy"
    )
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    assert blas, (
        "set-up: NumPy is not linked to a BLAS library (OpenBLAS, MKL, Accelerate); "
        "install NumPy from pip or conda wheels"
    )


def test_doctor_finds_no_failures():
    if importlib.util.find_spec("dlcc.doctor") is not None:
        from dlcc.doctor import run_doctor

        report = run_doctor(smoke=True)
        failed = [check for check in report.checks if check.status == "fail"]
        assert not failed, (
            f"set-up: `dlcc doctor` reports {len(failed)} failed check(s), first "
            f"{failed[0].name}: {failed[0].hint or failed[0].value}"
        )
        return
    # Without `dlcc doctor`: the essentials it would check.
    for package, fix in (("torch", "make install"), ("sklearn", "pip install scikit-learn")):
        assert importlib.util.find_spec(package) is not None, (
            f"set-up: {package} is not installed; run `{fix}`"
        )
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((16, 8)), rng.standard_normal((8, 4))
    assert np.allclose((torch.tensor(a) @ torch.tensor(b)).numpy(), a @ b), (
        "set-up: PyTorch's matrix product disagrees with NumPy's; reinstall PyTorch"
    )
