"""What this machine runs: Python, NumPy and its BLAS, PyTorch and its accelerators.

`describe_environment` returns it as a small JSON-ready dict, for a log line, a run's
metadata or a bug report. `dlcc doctor` goes further: it checks the machine, smoke-tests
each device and says how to fix what is wrong. (Assignment 1, Part 0, has you write this.)

Importing this module is cheap: PyTorch is imported inside the function, and only if it is
installed.
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info


def describe_environment() -> dict[str, Any]:
    """The versions and devices this Python process would train with.

    Returns a dict with exactly these keys:
        python: the interpreter's version, ``platform.python_version()``, e.g. ``"3.11.7"``.
        numpy: ``numpy.__version__``, e.g. ``"2.1.3"``.
        blas: NumPy's BLAS as threadpoolctl's ``threadpool_info()`` reports it: the first
            entry whose ``user_api`` is ``"blas"``, as ``"<internal_api> <version>"``, e.g.
            ``"openblas 0.3.27"`` (just ``"<internal_api>"`` when its version is None);
            None when threadpoolctl sees no BLAS (Apple's Accelerate is invisible to it).
        blas_threads: that entry's ``num_threads`` (an int), None when ``blas`` is None.
        torch: ``torch.__version__``, e.g. ``"2.5.1+cu124"``, or None when PyTorch is not
            installed (``import torch`` raises ImportError).
        cuda_available: ``torch.cuda.is_available()``; False without PyTorch.
        gpus: the name of each CUDA device, ``torch.cuda.get_device_name(i)`` for
            ``i`` in ``range(torch.cuda.device_count())``; empty without CUDA.
        mps_available: ``torch.backends.mps.is_available()`` (Apple-silicon GPUs); False
            without PyTorch.
    """
    # BEGIN SOLUTION describe_environment: versions from platform, numpy, threadpoolctl, torch
    blas, blas_threads = None, None
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    if pools:
        name, version = pools[0].get("internal_api"), pools[0].get("version")
        blas = f"{name} {version}" if version else str(name)
        blas_threads = int(pools[0]["num_threads"])

    try:
        import torch  # here, not at the top: the course runs its NumPy parts without it
    except ImportError:
        torch = None
    cuda_available = torch is not None and torch.cuda.is_available()
    gpus = []
    if cuda_available:
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "blas_threads": blas_threads,
        "torch": torch.__version__ if torch is not None else None,
        "cuda_available": bool(cuda_available),
        "gpus": gpus,
        "mps_available": bool(mps is not None and mps.is_available()),
    }
    # END SOLUTION
    # BEGIN PROMPT
    # Build the dict the docstring describes, one key at a time:
    # - python and numpy: `platform` and `np` (imported above) each have the version.
    # - blas, blas_threads: keep the entries of threadpool_info() whose "user_api" is "blas".
    # - torch: import it here, inside try/except ImportError, so that a machine without
    #   PyTorch still gets an answer (torch None, no CUDA, no GPUs, no MPS).
    # END PROMPT
