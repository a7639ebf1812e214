"""Part 0: set-up. Does `describe_environment` tell the truth about this machine, and is the
machine it describes one the course runs on?

Each test compares what the learner's `dlcc.environment.describe_environment` returns with
what the test finds out for itself, the same way the docstring says to.
"""

from __future__ import annotations

import platform

import numpy as np
import torch
from a1_helpers import described_without_torch
from threadpoolctl import threadpool_info

from dlcc.environment import describe_environment

KEYS = (
    "python",
    "numpy",
    "blas",
    "blas_threads",
    "torch",
    "cuda_available",
    "gpus",
    "mps_available",
)


def described(describe=None) -> dict:
    """describe_environment()'s answer (or `describe()`'s), checked to be a dict with exactly
    the documented keys."""
    answer = (describe or describe_environment)()
    if not isinstance(answer, dict):
        raise AssertionError(f"describe_environment: a dict expected, got {type(answer).__name__}")
    missing = [key for key in KEYS if key not in answer]
    extra = sorted(str(key) for key in answer if key not in KEYS)
    if missing or extra:
        raise AssertionError(
            f"describe_environment: keys {list(KEYS)} expected; missing {missing}, "
            f"unexpected {extra}"
        )
    return answer


def check_value(answer: dict, key: str, expected) -> None:
    actual = answer[key]
    # str subclasses (torch's TorchVersion) are fine; a bool where an int belongs is not.
    right_type = isinstance(actual, type(expected)) and (
        isinstance(expected, bool) or not isinstance(actual, bool)
    )
    if actual != expected or not right_type:
        raise AssertionError(
            f"describe_environment: {key} should be {expected!r} on this machine, got {actual!r}"
        )


def test_describe_environment_reports_versions():
    answer = described()
    check_value(answer, "python", platform.python_version())
    check_value(answer, "numpy", np.__version__)
    check_value(answer, "torch", str(torch.__version__))


def test_describe_environment_reports_numpy_blas():
    answer = described()
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    if not pools:
        check_value(answer, "blas", None)
        check_value(answer, "blas_threads", None)
        return
    name, version = pools[0].get("internal_api"), pools[0].get("version")
    check_value(answer, "blas", f"{name} {version}" if version else str(name))
    check_value(answer, "blas_threads", int(pools[0]["num_threads"]))


def test_describe_environment_reports_accelerators():
    answer = described()
    cuda = torch.cuda.is_available()
    check_value(answer, "cuda_available", cuda)
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    check_value(answer, "gpus", gpus if cuda else [])
    check_value(answer, "mps_available", bool(torch.backends.mps.is_available()))


def test_describe_environment_without_torch():
    try:
        answer = described(described_without_torch)
    except ImportError as error:
        raise AssertionError(
            f"describe_environment: without PyTorch it should still answer (torch None), but "
            f"raised ImportError: {error}; import torch inside a try/except ImportError"
        ) from None
    for key, expected in [
        ("torch", None),
        ("cuda_available", False),
        ("gpus", []),
        ("mps_available", False),
    ]:
        if answer[key] != expected:
            raise AssertionError(
                f"describe_environment: without PyTorch, {key} should be {expected!r}, "
                f"got {answer[key]!r}"
            )


def test_the_environment_described_is_one_the_course_runs_on():
    answer = described()
    python = tuple(int(part) for part in str(answer["python"]).split(".")[:2] if part.isdigit())
    assert python >= (3, 10), (
        f"set-up: the course needs Python 3.10 or newer, your environment has "
        f"{answer['python']}; make a new environment (handout, Part 0)"
    )
    assert answer["torch"] is not None, (
        "set-up: describe_environment says PyTorch is not installed; the tests use it as "
        'their oracle: run `pip install -e ".[dev,torch]"` (or `make install`)'
    )
    from dlcc.doctor import run_doctor

    report = run_doctor(smoke=True)
    failed = [check for check in report.checks if check.status == "fail"]
    if failed:
        first = failed[0]
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        fix = " ".join((first.hint or first.value).split())
        raise AssertionError(
            f"set-up: `dlcc doctor` failed its {first.name!r} check{others}: {fix}"
        )
