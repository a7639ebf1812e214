"""PyTorch and GPUs: torch's import, build and threads, nvidia-smi, CUDA, cuDNN, Apple MPS."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcc.doctor.machine import _gib, _pip_install, _short_path, _version_tuple, usable_cores
from dlcc.doctor.report import Check

MIN_TORCH = (2, 2)  # as in pyproject.toml's `torch` extra
SMALL_GPU_GIB = 4.0

CUDA_INSTALL_HINT = (
    'rm -f .venv/.installed && make install TORCH_INSTALL="torch --index-url '
    'https://download.pytorch.org/whl/cu126"'
)
NO_GPU_HINT = (
    "training runs on the CPU (fine for this course's small models); "
    f"for a GPU, on a machine with an NVIDIA driver, install the CUDA build: `{CUDA_INSTALL_HINT}`"
)


@dataclass
class NvidiaSmi:
    """What ``nvidia-smi`` says: it exists at `path`; its GPUs, or the error it printed."""

    path: str
    gpus: list[dict[str, str]] = field(default_factory=list)  # name, driver_version, memory
    error: str = ""

    @property
    def driver(self) -> str:
        return self.gpus[0]["driver_version"] if self.gpus else ""


def query_nvidia_smi() -> NvidiaSmi | None:
    """Run ``nvidia-smi`` if it exists (the NVIDIA driver ships it); None when it does not."""
    path = shutil.which("nvidia-smi")
    if path is None:
        return None
    command = [path, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as error:
        return NvidiaSmi(path, error=f"{type(error).__name__}: {error}")
    if completed.returncode != 0:
        message = (completed.stdout + completed.stderr).strip().splitlines()
        return NvidiaSmi(path, error=message[0] if message else f"exit {completed.returncode}")
    gpus = []
    for line in completed.stdout.strip().splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) == 3:
            gpus.append(dict(zip(("name", "driver_version", "memory"), fields, strict=True)))
    return NvidiaSmi(path, gpus=gpus)


def import_torch() -> tuple[Any, Check]:
    """(torch or None, the ``torch`` check). Failure to import is a fail with a fix."""
    try:
        import torch
    except ImportError as error:
        return None, Check(
            "torch",
            "fail",
            f"not installed ({error})",
            f"install it: `make install` (CPU build), or {_pip_install('torch')}; for a GPU, "
            f"`{CUDA_INSTALL_HINT}`",
        )
    except Exception as error:  # e.g. OSError: a CUDA library it links against is missing
        return None, Check(
            "torch",
            "fail",
            f"installed but broken: {type(error).__name__}: {error}",
            "reinstall it: "
            f"{_pip_install('--force-reinstall torch')} (or the CUDA build, `{CUDA_INSTALL_HINT}`)",
        )
    value = f"{torch.__version__} in {_short_path(Path(torch.__file__).parent)}"
    details = {"version": torch.__version__}
    if _version_tuple(torch.__version__) < MIN_TORCH:
        needed = ".".join(map(str, MIN_TORCH))
        hint = f"the course needs torch >= {needed}: {_pip_install('--upgrade torch')}"
        return torch, Check("torch", "warn", value, hint, details=details)
    return torch, Check("torch", "ok", value, details=details)


def _cudnn_version_text(version: int) -> str:
    """cuDNN's integer version as text: 90100 -> 9.1.0 (cuDNN 9), 8902 -> 8.9.2 (cuDNN 8)."""
    if version >= 10000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def torch_build_check(torch: Any, smi: NvidiaSmi | None) -> Check:
    """CPU-only, CUDA or ROCm build; a warn for a CPU-only build on a machine with nvidia-smi."""
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    cpu_blas = f"; CPU BLAS {blas.group(1)}" if blas else ""
    if torch.version.hip:
        return Check("torch build", "ok", f"ROCm {torch.version.hip}{cpu_blas}")
    if torch.version.cuda:
        value = f"CUDA {torch.version.cuda}{cpu_blas}"
        return Check("torch build", "ok", value, details={"cuda": torch.version.cuda})
    value = f"CPU-only{cpu_blas}"
    if smi is not None:
        seen = f"{len(smi.gpus)} NVIDIA GPU(s)" if smi.gpus else "an NVIDIA driver"
        hint = (
            f"this machine has {seen} (nvidia-smi) but torch cannot use it: `{CUDA_INSTALL_HINT}`"
        )
        return Check("torch build", "warn", f"{value}, but nvidia-smi exists", hint)
    return Check("torch build", "ok", value, details={"cuda": None})


def torch_threads_check(torch: Any) -> Check:
    """torch's intra-op threads against the cores this process may use."""
    threads = torch.get_num_threads()
    cores = usable_cores()
    value = f"{threads} intra-op threads for {cores} usable cores"
    details = {"threads": threads, "usable_cores": cores}
    if threads > cores:
        hint = (
            f"more threads than cores slows every operation: `export OMP_NUM_THREADS={cores}` "
            f"before starting Python, or call torch.set_num_threads({cores})"
        )
        return Check("torch threads", "warn", value, hint, details=details)
    if cores >= 4 and threads < cores // 2:
        setting = os.environ.get("OMP_NUM_THREADS")
        cause = f"OMP_NUM_THREADS={setting} limits it" if setting else "something limits it"
        hint = (
            f"{cause}: unset OMP_NUM_THREADS or `export OMP_NUM_THREADS={cores}` to use every core"
        )
        return Check("torch threads", "warn", value, hint, details=details)
    return Check("torch threads", "ok", value, details=details)


def cuda_checks(torch: Any, smi: NvidiaSmi | None) -> list[Check]:
    """CUDA availability, then one ``gpu cuda:N`` line per GPU and a ``cudnn`` line.

    No GPU is a warn: the course runs on a CPU, only slower.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    # torch explains a failed CUDA initialisation (old driver, ...) in a warning, not an error.
    init_warning = " ".join(" ".join(str(record.message).split()) for record in caught)
    driver = f", driver {smi.driver}" if smi is not None and smi.driver else ""
    if not available:
        return [_no_cuda_check(torch, smi, init_warning)]
    count = torch.cuda.device_count()
    api = f"ROCm {torch.version.hip}" if torch.version.hip else f"CUDA {torch.version.cuda}"
    checks = [
        Check(
            "cuda",
            "ok",
            f"{count} GPU(s) visible, {api}{driver}",
            details={"device_count": count, "driver": smi.driver if smi else ""},
        )
    ]
    arch_list = torch.cuda.get_arch_list()
    for index in range(count):
        checks.append(_gpu_check(torch, index, arch_list, driver))
    if not torch.version.hip:
        checks.append(_cudnn_check(torch))
    return checks


def _no_cuda_check(torch: Any, smi: NvidiaSmi | None, init_warning: str) -> Check:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return Check(
            "cuda",
            "warn",
            f"hidden: CUDA_VISIBLE_DEVICES={visible!r}",
            "unset CUDA_VISIBLE_DEVICES to let torch see the GPUs",
        )
    if not torch.version.cuda:
        if smi is not None:
            return Check(
                "cuda",
                "warn",
                "not available: torch is a CPU-only build",
                f"install the CUDA build of torch: `{CUDA_INSTALL_HINT}`",
            )
        return Check("cuda", "warn", "no CUDA GPU visible", NO_GPU_HINT)
    # A CUDA build that finds no GPU.
    reason = f" ({init_warning})" if init_warning else ""
    if smi is None:
        return Check(
            "cuda",
            "warn",
            f"torch has CUDA {torch.version.cuda} but no NVIDIA driver is installed{reason}",
            "training runs on the CPU; for a GPU, install the NVIDIA driver (nvidia-smi must "
            "work), or use a machine with one",
        )
    if smi.error:
        return Check(
            "cuda",
            "warn",
            f"nvidia-smi fails: {smi.error}{reason}",
            "the NVIDIA driver is broken or half-updated: reboot, or reinstall the driver "
            "until `nvidia-smi` lists the GPU",
        )
    return Check(
        "cuda",
        "warn",
        f"nvidia-smi sees {len(smi.gpus)} GPU(s) (driver {smi.driver}) but torch cannot use "
        f"them{reason}",
        f"torch was built for CUDA {torch.version.cuda}; the 'CUDA Version' in `nvidia-smi` must "
        "be at least that: update the driver, or install a torch for an older CUDA (e.g. "
        "cu118) from https://pytorch.org/get-started/locally/",
    )


def _arch_supported(major: int, minor: int, arch_list: list[str]) -> bool | None:
    """Can this torch build run kernels on compute capability major.minor? None if unknown.

    A binary built for sm_XY runs on X.Z with Z >= Y; PTX (compute_XY) is JIT-compiled for
    any later GPU.
    """
    if not arch_list:
        return None
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)\w?", arch)
        if match is None:
            continue
        kind, arch_major, arch_minor = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def _gpu_check(torch: Any, index: int, arch_list: list[str], driver: str) -> Check:
    name = f"gpu cuda:{index}"
    props = torch.cuda.get_device_properties(index)
    memory_gib = _gib(props.total_memory)
    capability = f"{props.major}.{props.minor}"
    value = f"{props.name}, {memory_gib:.1f} GiB, compute capability {capability}{driver}"
    details = {
        "name": props.name,
        "memory_gib": round(memory_gib, 2),
        "capability": capability,
        "multiprocessors": getattr(props, "multi_processor_count", None),
    }
    if _arch_supported(props.major, props.minor, arch_list) is False:
        hint = (
            f"this torch has kernels for {', '.join(arch_list)} only, not sm_{props.major}"
            f"{props.minor}: install a torch build that supports this GPU (see "
            "https://pytorch.org/get-started/locally/), or run on the CPU"
        )
        return Check(name, "warn", f"{value}: unsupported by this torch", hint, details=details)
    if memory_gib < SMALL_GPU_GIB:
        hint = "a small GPU: use smaller batch sizes (or mixed precision) in the larger models"
        return Check(name, "warn", value, hint, details=details)
    return Check(name, "ok", value, details=details)


def _cudnn_check(torch: Any) -> Check:
    cudnn = torch.backends.cudnn
    if not cudnn.is_available():
        return Check(
            "cudnn",
            "warn",
            "not available",
            "convolutions on the GPU will be slow: reinstall the CUDA build of torch "
            f"(`{CUDA_INSTALL_HINT}`)",
        )
    version = _cudnn_version_text(cudnn.version())
    if not cudnn.enabled:
        hint = "something set torch.backends.cudnn.enabled = False: remove that line"
        return Check("cudnn", "warn", f"{version}, disabled", hint)
    return Check("cudnn", "ok", f"{version}, enabled", details={"version": version})


def mps_check(torch: Any) -> Check:
    """Apple's GPU (Metal): only relevant on a Mac."""
    mps = getattr(torch.backends, "mps", None)
    if sys.platform != "darwin":
        return Check("mps", "ok", f"not applicable (Apple GPUs only; this is {platform.system()})")
    if mps is not None and mps.is_available():
        return Check("mps", "ok", "available (Apple GPU)")
    if mps is not None and mps.is_built():
        return Check(
            "mps",
            "warn",
            "built but not available",
            "MPS needs an Apple-silicon Mac with macOS 12.3 or later; training runs on the CPU",
        )
    return Check(
        "mps",
        "warn",
        "this torch was built without MPS",
        f"install the standard macOS wheel: {_pip_install('--force-reinstall torch')}",
    )
