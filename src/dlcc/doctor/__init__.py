"""``dlcc doctor``: is this machine ready for the course, and how fast is it?

It reports, one `Check` per line, each with a status and (unless ok) a fix:
- system: Python, OS, CPU cores, RAM, free disk in the data directory, which datasets are there;
- packages: NumPy and its BLAS, torchmetrics, matplotlib;
- PyTorch: version, build (CPU-only, CUDA or ROCm), threads, CUDA and cuDNN, each GPU, Apple MPS;
- smoke tests, on every device: a matmul checked against NumPy, and a few training steps of a
  tiny model whose loss must fall;
- speed: float32 GEMM GFLOP/s with NumPy on the CPU and with torch on each device.

Exit status (`DoctorReport.exit_status`): 1 when any check is "fail", else 0. A check fails only
when the course cannot run: Python < 3.10, NumPy missing or computing wrong answers, torch
missing or unimportable, or a smoke test failing on a device torch would use. Everything else
that is missing or slow is a "warn": no GPU (training runs on the CPU), a CPU-only torch on a
machine with an NVIDIA GPU, a NumPy without an optimised BLAS, missing datasets, missing
optional packages, little RAM or disk.

``dlcc doctor --json`` prints the report as JSON on stdout instead of the table; redirect it to
keep a copy (``dlcc doctor --json > doctor.json``). Its keys are those of
`DoctorReport.to_dict`.

Importing this module is cheap: NumPy, torch and the data package are imported inside the
checks, so ``dlcc --help`` does not pay for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dlcc.doctor.gpu import (
    CUDA_INSTALL_HINT,
    NO_GPU_HINT,
    NvidiaSmi,
    cuda_checks,
    import_torch,
    mps_check,
    query_nvidia_smi,
    torch_build_check,
    torch_threads_check,
)
from dlcc.doctor.machine import (
    cpu_check,
    datasets_check,
    disk_check,
    os_check,
    python_check,
    ram_check,
    usable_cores,
)
from dlcc.doctor.numeric import (
    OPTIONAL_PACKAGES,
    blas_check,
    numpy_blas_build,
    numpy_blas_pools,
    numpy_check,
    optional_package_check,
)
from dlcc.doctor.report import STATUSES, Check, DoctorReport, Status, format_table, summary_line
from dlcc.doctor.smoke import (
    _device_fix,
    available_devices,
    device_name,
    matmul_on_device,
    measure_gemm,
    numpy_gemm_check,
    resolve_devices,
    smoke_matmul_check,
    smoke_train_check,
    torch_gemm_check,
    train_steps_on_device,
)

__all__ = [
    "BUG_HINT",
    "CUDA_INSTALL_HINT",
    "NO_GPU_HINT",
    "OPTIONAL_PACKAGES",
    "STATUSES",
    "Check",
    "DoctorReport",
    "NvidiaSmi",
    "Status",
    "available_devices",
    "blas_check",
    "cpu_check",
    "cuda_checks",
    "datasets_check",
    "device_name",
    "disk_check",
    "format_table",
    "import_torch",
    "matmul_on_device",
    "measure_gemm",
    "mps_check",
    "numpy_blas_build",
    "numpy_blas_pools",
    "numpy_check",
    "numpy_gemm_check",
    "optional_package_check",
    "os_check",
    "python_check",
    "query_nvidia_smi",
    "ram_check",
    "resolve_devices",
    "run_doctor",
    "smoke_matmul_check",
    "smoke_train_check",
    "summary_line",
    "torch_build_check",
    "torch_gemm_check",
    "torch_threads_check",
    "train_steps_on_device",
    "usable_cores",
]

BUG_HINT = (
    "this check crashed: reinstall with `make install`; if it persists, report it with the "
    "output of `dlcc doctor --json`"
)


def _guarded(
    section: str,
    name: str,
    probe: Callable[[], Check | list[Check]],
    crash_status: Status = "warn",
    crash_hint: str = BUG_HINT,
) -> list[Check]:
    """Run `probe`; a crash becomes a `crash_status` line naming the error, not a traceback."""
    try:
        result = probe()
    except Exception as error:
        message = " ".join(f"{type(error).__name__}: {error}".split())
        result = Check(name, crash_status, f"check crashed: {message}", crash_hint)
    checks = result if isinstance(result, list) else [result]
    for check in checks:
        check.section = check.section or section
    return checks


def run_doctor(
    smoke: bool = True,
    devices: list[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Check this machine for the course; see the module docstring for what and why.

    Args:
        smoke: run the smoke tests and GEMM timings (about 1 s per device); False reports only.
        devices: devices to test (``cpu``, ``cuda``, ``cuda:N``, ``mps``); None for all found.
        data_dir: the data directory to inspect (default: $DLCC_DATA_DIR, else ~/.cache/dlcc).
        progress: called with a short label before each stage (the CLI shows it on stderr).

    Returns:
        The report; ``report.ok`` is False when the course cannot run here.

    Raises:
        DlccError: a name in `devices` is not a device kind.
    """
    if devices is not None:
        devices = [device_name(device) for device in devices]
    say = progress or (lambda label: None)
    report = DoctorReport(smoke=smoke)
    add = report.checks.extend

    say("system")
    add(_guarded("system", "python", python_check, crash_status="fail"))
    add(_guarded("system", "os", os_check))
    add(_guarded("system", "cpu", cpu_check))
    add(_guarded("system", "ram", ram_check))
    add(_guarded("system", "disk", lambda: disk_check(data_dir)))
    add(_guarded("system", "datasets", lambda: datasets_check(data_dir)))

    say("packages")
    add(_guarded("packages", "numpy", numpy_check, crash_status="fail"))
    numpy_works = report.checks[-1].status != "fail"
    if numpy_works:
        add(_guarded("packages", "blas", blas_check))
    for package in OPTIONAL_PACKAGES:
        add(_guarded("packages", package, lambda package=package: optional_package_check(package)))

    say("pytorch")
    torch, torch_check = import_torch()
    add(_guarded("pytorch", "torch", lambda: torch_check))
    targets: list[str] = []
    if torch is not None:
        smi = query_nvidia_smi()
        add(_guarded("pytorch", "torch build", lambda: torch_build_check(torch, smi)))
        add(_guarded("pytorch", "torch threads", lambda: torch_threads_check(torch)))
        add(_guarded("gpu", "cuda", lambda: cuda_checks(torch, smi)))
        add(_guarded("gpu", "mps", lambda: mps_check(torch)))
        if smoke:
            targets, absent = resolve_devices(torch, devices)
            add(_guarded("smoke tests", "devices", lambda: absent))
    elif smoke and (devices is None or "cpu" in devices):
        targets = ["cpu"]  # NumPy's GEMM can still be timed
    if not smoke or not numpy_works:
        return report

    report.devices = list(targets)
    torch_targets = targets if torch is not None else []
    for device in torch_targets:
        say(f"smoke test on {device}")
        for name, probe in [
            (f"matmul {device}", smoke_matmul_check),
            (f"train {device}", smoke_train_check),
        ]:
            run = lambda probe=probe, device=device: probe(torch, device)  # noqa: E731
            add(_guarded("smoke tests", name, run, "fail", _device_fix(device)))
    if "cpu" in targets:
        say("GEMM speed with NumPy on cpu")
        add(_guarded("speed", "gemm numpy cpu", numpy_gemm_check))
    for device in torch_targets:
        say(f"GEMM speed with torch on {device}")
        run = lambda device=device: torch_gemm_check(torch, device)  # noqa: E731
        add(_guarded("speed", f"gemm torch {device}", run))
    return report
