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

import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dlcc import __version__
from dlcc.errors import DlccError

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")

MIN_PYTHON = (3, 10)
MIN_TORCH = (2, 2)  # as in pyproject.toml's `torch` extra
LOW_RAM_GIB = 4.0
LOW_AVAILABLE_RAM_GIB = 1.0
LOW_DISK_GIB = 2.0
SMALL_GPU_GIB = 4.0

# GEMM timing: square float32 matrices, repeated for about GEMM_SECONDS per device.
GEMM_SECONDS = 0.3
CPU_GEMM_SIZE = 1024  # 2.1 GFLOP a product: ~10-100 ms on a laptop or server CPU
ACCELERATOR_GEMM_SIZE = 4096  # 137 GFLOP a product: a few ms on a data-centre GPU

CUDA_INSTALL_HINT = (
    'rm -f .venv/.installed && make install TORCH_INSTALL="torch --index-url '
    'https://download.pytorch.org/whl/cu126"'
)
NO_GPU_HINT = (
    "training runs on the CPU (fine for this course's small models); "
    f"for a GPU, on a machine with an NVIDIA driver, install the CUDA build: `{CUDA_INSTALL_HINT}`"
)
BUG_HINT = (
    "this check crashed: reinstall with `make install`; if it persists, report it with the "
    "output of `dlcc doctor --json`"
)


@dataclass
class Check:
    """One line of the report.

    Attributes:
        name: what was checked, e.g. ``python``, ``gpu cuda:0``, ``gemm torch cpu``.
        status: ``ok`` | ``warn`` (works, but slower or less than it could) | ``fail`` (the
            course cannot run until it is fixed).
        value: what was found, one line for a person.
        hint: what to do about a warn or fail; empty when ok.
        section: the table heading it is printed under.
        details: machine-readable numbers behind `value` (GFLOP/s, GiB, versions).
    """

    name: str
    status: Status
    value: str
    hint: str = ""
    section: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class DoctorReport:
    """Every check run by `run_doctor`, in the order of the table.

    Attributes:
        checks: the report's lines.
        smoke: whether the smoke tests and GEMM timings ran.
        devices: the devices they ran on (``cpu``, ``cuda:0``, ``mps``).
        dlcc_version: the version of dlcc that wrote it.
    """

    checks: list[Check] = field(default_factory=list)
    smoke: bool = True
    devices: list[str] = field(default_factory=list)
    dlcc_version: str = __version__

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return all(check.status != "fail" for check in self.checks)

    @property
    def status(self) -> Status:
        """The worst status of any check."""
        return max((check.status for check in self.checks), key=STATUSES.index, default="ok")

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in STATUSES}

    def exit_status(self) -> int:
        """0 when the course can run here, 1 when a check failed."""
        return 0 if self.ok else 1

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError naming the ones there are otherwise."""
        for check in self.checks:
            if check.name == name:
                return check
        names = ", ".join(check.name for check in self.checks)
        raise KeyError(f"no check named {name!r} in this report; it has: {names}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``dlcc_version``, ``ok``, ``status``, ``counts``, ``smoke``, ``devices``,
        ``checks`` (each with ``name``, ``status``, ``value``, ``hint``, ``section``,
        ``details``)."""
        return {
            "dlcc_version": self.dlcc_version,
            "ok": self.ok,
            "status": self.status,
            "counts": self.counts(),
            "smoke": self.smoke,
            "devices": list(self.devices),
            "checks": [asdict(check) for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoctorReport:
        """The inverse of `to_dict` (the derived ``ok``, ``status`` and ``counts`` are ignored)."""
        return cls(
            checks=[Check(**check) for check in data["checks"]],
            smoke=bool(data.get("smoke", True)),
            devices=list(data.get("devices", [])),
            dlcc_version=str(data.get("dlcc_version", "")),
        )


# ---------------------------------------------------------------------------------------------
# Small helpers


def _gib(n_bytes: float) -> float:
    return n_bytes / 2**30


def _short_path(path: str | os.PathLike[str]) -> str:
    """`path` relative to the working directory when it is inside it, for shorter hints."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _pip_install(requirement: str) -> str:
    """The exact command that installs `requirement` into the interpreter running dlcc."""
    return f"`{_short_path(sys.executable)} -m pip install {requirement}`"


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``: the leading numeric parts."""
    parts = []
    for part in re.split(r"[.+]", version):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _cgroup_limits() -> tuple[float | None, int | None]:
    """(CPU quota in cores, memory limit in bytes) of this container (cgroup v2), None if none.

    Docker, Kubernetes and Colab cap a process below what the machine has; psutil and
    os.cpu_count report the machine.
    """
    cpu_quota = None
    fields = _read_text("/sys/fs/cgroup/cpu.max").split()
    if len(fields) == 2 and fields[0] != "max":
        try:
            cpu_quota = int(fields[0]) / int(fields[1])
        except (ValueError, ZeroDivisionError):
            cpu_quota = None
    memory = _read_text("/sys/fs/cgroup/memory.max")
    memory_limit = int(memory) if memory.isdigit() else None
    return cpu_quota, memory_limit


def usable_cores() -> int:
    """CPU cores this process may run on: affinity mask, capped by a container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    cpu_quota, _ = _cgroup_limits()
    if cpu_quota is not None:
        cores = min(cores, max(1, math.ceil(cpu_quota)))
    return cores


def _cpu_model() -> str:
    for line in _read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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


# ---------------------------------------------------------------------------------------------
# System


def python_check(version_info: tuple[int, ...] | None = None) -> Check:
    """Python >= 3.10 (fail otherwise), its implementation, and whether it runs in a venv."""
    version_info = tuple(version_info or sys.version_info)
    version = ".".join(str(part) for part in version_info[:3])
    in_venv = sys.prefix != sys.base_prefix
    where = "virtual environment" if in_venv else "no virtual environment"
    value = (
        f"{version} ({platform.python_implementation()}, {where}: {_short_path(sys.executable)})"
    )
    if version_info[:2] < MIN_PYTHON:
        needed = ".".join(map(str, MIN_PYTHON))
        return Check(
            "python",
            "fail",
            value,
            f"the course needs Python >= {needed}: install Python 3.11 (python.org, pyenv or "
            "conda), then `rm -rf .venv && make install PYTHON=python3.11`",
            details={"version": version},
        )
    return Check("python", "ok", value, details={"version": version, "venv": in_venv})


def os_check() -> Check:
    system = platform.system()
    if system == "Darwin":
        name = f"macOS {platform.mac_ver()[0]}"
    elif system == "Linux":
        try:
            name = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
        except OSError:
            name = "Linux"
        name += f" (kernel {platform.release()})"
        if "microsoft" in platform.release().lower():
            name += ", WSL"
    else:
        name = f"{system} {platform.release()}"
    return Check("os", "ok", f"{name}, {platform.machine()}", details={"system": system})


def cpu_check() -> Check:
    import psutil

    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False) or logical
    usable = usable_cores()
    value = f"{logical} logical cores ({physical} physical), {usable} usable; {_cpu_model()}"
    details = {"logical": logical, "physical": physical, "usable": usable}
    return Check("cpu", "ok", value, details=details)


def ram_check() -> Check:
    import psutil

    memory = psutil.virtual_memory()
    total, available = memory.total, memory.available
    _, container_limit = _cgroup_limits()
    limited = container_limit is not None and container_limit < total
    if limited:
        total, available = container_limit, min(available, container_limit)
    value = f"{_gib(total):.1f} GiB total, {_gib(available):.1f} GiB available"
    if limited:
        value += " (container limit)"
    details = {"total_gib": round(_gib(total), 2), "available_gib": round(_gib(available), 2)}
    if _gib(total) < LOW_RAM_GIB or _gib(available) < LOW_AVAILABLE_RAM_GIB:
        hint = (
            "little memory: close other programs, use the `*_smoke` recipes and smaller batch "
            "sizes; CIFAR-10 and U-Net assignments want 4 GiB or more"
        )
        return Check("ram", "warn", value, hint, details=details)
    return Check("ram", "ok", value, details=details)


def disk_check(data_dir: str | os.PathLike[str] | None = None) -> Check:
    """Free space where datasets go (the nearest existing folder above, before a fetch)."""
    from dlcc.data.paths import data_dir_origin, resolve_data_dir

    data_root = resolve_data_dir(data_dir)
    existing = data_root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    value = f"{_gib(free):.1f} GiB free in {data_root} (data dir, from {data_dir_origin(data_dir)})"
    details = {"data_dir": str(data_root), "free_gib": round(_gib(free), 2)}
    if _gib(free) < LOW_DISK_GIB:
        hint = (
            f"under {LOW_DISK_GIB:.0f} GiB free: datasets and checkpoints need room; free some "
            "space, or point DLCC_DATA_DIR (or --data-dir) at a disk with more"
        )
        return Check("disk", "warn", value, hint, details=details)
    return Check("disk", "ok", value, details=details)


def datasets_check(data_dir: str | os.PathLike[str] | None = None) -> Check:
    """Which registered datasets are present; a warn listing how to get the missing ones."""
    from dlcc.data.paths import resolve_data_dir
    from dlcc.data.registry import dataset_names, get_spec
    from dlcc.data.status import dataset_status, placement_hint

    statuses = [dataset_status(name, data_dir) for name in dataset_names()]
    present = [status.name for status in statuses if status.present]
    missing = [status.name for status in statuses if not status.present]
    value = f"present: {', '.join(present) or 'none'}"
    details = {"present": present, "missing": missing}
    if not missing:
        return Check("datasets", "ok", value, details=details)
    value += f"; missing: {', '.join(missing)}"
    data_root = resolve_data_dir(data_dir)
    fixes = []
    for name in missing:
        spec = get_spec(name)
        if spec.downloadable:
            fixes.append(f"`dlcc data fetch {name}`")
        elif spec.file_format == "embedded":
            fixes.append(f"{name}: {_pip_install('scikit-learn')}")
        else:
            fixes.append(f"{name}: {placement_hint(spec, data_root)}")
    hint = (
        f"get them when an assignment needs them: {'; '.join(fixes)}; or point DLCC_DATA_DIR "
        "at a folder that has them"
    )
    return Check("datasets", "warn", value, hint, details=details)


# ---------------------------------------------------------------------------------------------
# Packages


def numpy_check() -> Check:
    """NumPy importable and computing a known product correctly (fail otherwise)."""
    try:
        import numpy as np
    except Exception as error:
        return Check(
            "numpy",
            "fail",
            f"not importable: {type(error).__name__}: {error}",
            f"install it: `make install` or {_pip_install('numpy')}",
        )
    product = np.arange(6.0).reshape(2, 3) @ np.arange(6.0).reshape(3, 2)
    if not np.array_equal(product, [[10.0, 13.0], [28.0, 40.0]]):
        return Check(
            "numpy",
            "fail",
            f"{np.__version__} computes a wrong matrix product",
            f"reinstall it: {_pip_install('--force-reinstall numpy')}",
        )
    if _version_tuple(np.__version__) < (1, 26):
        return Check(
            "numpy",
            "warn",
            f"{np.__version__}, older than the 1.26 the course is tested with",
            f"upgrade: {_pip_install('--upgrade numpy')}",
        )
    return Check("numpy", "ok", np.__version__, details={"version": np.__version__})


def numpy_blas_build() -> dict[str, Any]:
    """The BLAS NumPy was built against, from ``numpy.show_config`` ({} when unknown)."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # NumPy < 1.26 only prints
        return {}
    return dict(config.get("Build Dependencies", {}).get("blas", {}))


def numpy_blas_pools() -> list[dict[str, Any]]:
    """threadpoolctl's view of the BLAS libraries loaded for NumPy (thread counts, CPU arch)."""
    import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    # torch and scipy may load BLAS libraries of their own; prefer the one inside numpy.
    own = [pool for pool in pools if "numpy" in str(pool.get("filepath", ""))]
    return own or pools


def blas_check() -> Check:
    """NumPy's BLAS; a warn when none is found (matrix products then run 10-100x slower)."""
    build = numpy_blas_build()
    pools = numpy_blas_pools()
    if pools:
        pool = pools[0]
        extras = [str(pool[key]) for key in ("architecture", "threading_layer") if pool.get(key)]
        version = pool.get("version") or ""
        value = f"{pool.get('internal_api', 'blas')} {version}".strip()
        if extras:
            value += f" ({', '.join(extras)})"
        value += f", {pool.get('num_threads')} threads"
        details = {"library": pool.get("internal_api"), "threads": pool.get("num_threads")}
        return Check("blas", "ok", value, details=details)
    name = str(build.get("name", "")).lower()
    if build.get("found") and any(known in name for known in ("accelerate", "mkl", "openblas")):
        # Apple's Accelerate is fast but invisible to threadpoolctl.
        value = f"{build['name']} {build.get('version', '')}".strip()
        return Check("blas", "ok", value, details={"library": build["name"]})
    return Check(
        "blas",
        "warn",
        f"no optimised BLAS found (NumPy built with {build.get('name') or 'unknown'})",
        "matrix products will be slow: install NumPy's official wheel, which bundles OpenBLAS: "
        f"{_pip_install('--force-reinstall --only-binary=:all: numpy')}",
    )


OPTIONAL_PACKAGES = {
    "torchmetrics": "metrics in the PyTorch assignments",
    "matplotlib": "training curves and figures",
}


def optional_package_check(package: str) -> Check:
    """Installed (ok, with its version) or not (warn); read from metadata, not imported."""
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return Check(
            package,
            "warn",
            f"not installed (used for {OPTIONAL_PACKAGES.get(package, 'some assignments')})",
            f"install it: {_pip_install(package)}",
        )
    return Check(package, "ok", version, details={"version": version})


# ---------------------------------------------------------------------------------------------
# PyTorch


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


# ---------------------------------------------------------------------------------------------
# Devices, smoke tests and speed

DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:\d+)?")


def device_name(text: str) -> str:
    """`text` if it names a device kind dlcc knows (cpu, cuda, cuda:N, mps); DlccError else."""
    name = text.strip().lower()
    if not DEVICE_PATTERN.fullmatch(name):
        raise DlccError(f"unknown device {text!r}: expected cpu, cuda, cuda:N or mps")
    return name


def available_devices(torch: Any) -> list[str]:
    """Every device torch can use here: cpu, each cuda:N, and mps."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def resolve_devices(torch: Any, requested: list[str] | None) -> tuple[list[str], list[Check]]:
    """(devices to test, warn checks for requested devices that are not here).

    None means every available device; ``cuda`` means every GPU. A requested device that is
    absent is a warn, like no GPU at all.
    """
    available = available_devices(torch)
    if requested is None:
        return available, []
    devices: list[str] = []
    absent: list[Check] = []
    for name in map(device_name, requested):
        matches = [d for d in available if d == name or (name == "cuda" and d.startswith("cuda:"))]
        if not matches:
            hint = NO_GPU_HINT if name.startswith("cuda") else "see the `mps` line above"
            shown = ", ".join(available)
            absent.append(Check(f"device {name}", "warn", f"requested, not here ({shown})", hint))
        devices += [d for d in matches if d not in devices]
    return devices, absent


def matmul_on_device(torch: Any, device: str, left: Any, right: Any) -> Any:
    """``left @ right`` (NumPy float32 arrays) computed by torch on `device`, as NumPy."""
    product = torch.from_numpy(left).to(device) @ torch.from_numpy(right).to(device)
    return product.cpu().numpy()


def _device_fix(device: str) -> str:
    if device == "cpu":
        return (
            f"torch is broken on the CPU: reinstall it ({_pip_install('--force-reinstall torch')})"
        )
    if device == "mps":
        return (
            "the Apple GPU gives wrong results or crashes: update macOS and torch; meanwhile "
            "train on the CPU with `dlcc train ... --device cpu`"
        )
    return (
        f"{device} gives wrong results or crashes: update the NVIDIA driver and reinstall torch; "
        "meanwhile train on the CPU with `dlcc train ... --device cpu`, or hide the GPU with "
        "`export CUDA_VISIBLE_DEVICES=`"
    )


def smoke_matmul_check(torch: Any, device: str) -> Check:
    """A (64, 48) @ (48, 32) float32 product on `device` against NumPy in float64."""
    import numpy as np

    name = f"matmul {device}"
    rng = np.random.default_rng(0)
    left = rng.standard_normal((64, 48), dtype=np.float32)
    right = rng.standard_normal((48, 32), dtype=np.float32)
    expected = left.astype(np.float64) @ right.astype(np.float64)  # (64, 32)
    got = np.asarray(matmul_on_device(torch, device, left, right))
    if got.shape != expected.shape:
        value = f"product has shape {got.shape}, expected {expected.shape}"
        return Check(name, "fail", value, _device_fix(device))
    error = float(np.max(np.abs(got - expected)))
    # Entries are sums of 48 unit-variance products (std ~7); float32 errs by ~1e-6, TF32 by
    # ~1e-3. A broken kernel errs by the size of the entries.
    tolerance = 1e-2 * math.sqrt(left.shape[1])
    value = f"(64, 48) @ (48, 32) float32 vs NumPy: max abs error {error:.1e}"
    details = {"max_abs_error": error, "tolerance": tolerance}
    if not math.isfinite(error) or error > tolerance:
        value += f" > {tolerance:.1e}"
        return Check(name, "fail", value, _device_fix(device), details=details)
    return Check(name, "ok", value, details=details)


def train_steps_on_device(
    torch: Any, device: str, steps: int = 30, learning_rate: float = 0.5
) -> list[float]:
    """Training losses of a 8-16-2 MLP on a separable toy problem, one per SGD step.

    The data and weights are drawn under a forked RNG, so the caller's random state is
    untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        inputs = torch.randn(256, 8)  # (N, 8)
        labels = (inputs[:, 0] + inputs[:, 1] > 0).long()  # (N,), separable by a plane
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model.to(device)
    inputs, labels = inputs.to(device), labels.to(device)
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        # Plain SGD by hand: constructing a torch.optim optimiser first imports TorchDynamo,
        # over a second of start-up that this check does not need.
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= learning_rate * parameter.grad
        losses.append(float(loss.item()))
    return losses


def smoke_train_check(torch: Any, device: str) -> Check:
    """The loss of `train_steps_on_device` must be finite and fall by at least a third."""
    name = f"train {device}"
    losses = train_steps_on_device(torch, device)
    first, last = losses[0], losses[-1]
    value = f"loss {first:.3f} -> {last:.3f} in {len(losses)} SGD steps (MLP 8-16-2)"
    details = {"first_loss": first, "last_loss": last, "steps": len(losses)}
    if not all(math.isfinite(loss) for loss in losses) or not last < 2 / 3 * first:
        value += ": did not decrease"
        return Check(name, "fail", value, _device_fix(device), details=details)
    return Check(name, "ok", value, details=details)


def measure_gemm(
    multiply: Callable[[], Any],
    size: int,
    seconds: float,
    synchronize: Callable[[], Any] = lambda: None,
) -> tuple[float, int]:
    """(GFLOP/s, repeats) of `multiply`, a size x size x size matrix product.

    One warm-up product (allocations, thread pools, kernel selection), one timed product to
    choose the number of repeats that fills `seconds`, then the timed repeats. `synchronize`
    waits for queued GPU work, so the clock measures the work and not its launch.
    """
    multiply()
    synchronize()
    start = time.perf_counter()
    multiply()
    synchronize()
    single = time.perf_counter() - start
    repeats = max(1, min(1000, int(seconds / max(single, 1e-9))))
    start = time.perf_counter()
    for _ in range(repeats):
        multiply()
    synchronize()
    elapsed = time.perf_counter() - start
    return 2 * size**3 * repeats / elapsed / 1e9, repeats


def _gemm_check(name: str, gflops: float, size: int, repeats: int, note: str = "") -> Check:
    value = f"{gflops:,.1f} GFLOP/s (float32 {size}x{size}, {repeats} products{note})"
    details = {"gflops": round(gflops, 2), "size": size, "repeats": repeats}
    return Check(name, "ok", value, section="speed", details=details)


def numpy_gemm_check() -> Check:
    import numpy as np

    size = CPU_GEMM_SIZE
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty((size, size), dtype=np.float32)
    gflops, repeats = measure_gemm(lambda: np.matmul(left, right, out=out), size, GEMM_SECONDS)
    return _gemm_check("gemm numpy cpu", gflops, size, repeats)


def torch_gemm_check(torch: Any, device: str) -> Check:
    size = CPU_GEMM_SIZE if device == "cpu" else ACCELERATOR_GEMM_SIZE
    generator = torch.Generator().manual_seed(0)
    left, right = (torch.randn(size, size, generator=generator).to(device) for _ in range(2))
    out = torch.empty(size, size, device=device)
    synchronize = lambda: None  # noqa: E731
    note = ""
    if device.startswith("cuda"):
        synchronize = lambda: torch.cuda.synchronize(device)  # noqa: E731
        if torch.backends.cuda.matmul.allow_tf32:
            note = ", TF32 allowed"
    elif device == "mps":
        synchronize = torch.mps.synchronize
    multiply = lambda: torch.matmul(left, right, out=out)  # noqa: E731
    gflops, repeats = measure_gemm(multiply, size, GEMM_SECONDS, synchronize)
    return _gemm_check(f"gemm torch {device}", gflops, size, repeats, note)


# ---------------------------------------------------------------------------------------------
# The report


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


STATUS_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


def summary_line(report: DoctorReport) -> str:
    counts = report.counts()
    warnings_text = f"{counts['warn']} warning{'s' * (counts['warn'] != 1)}"
    if report.ok:
        tail = ": the course runs here" + (" (see the fixes above)" if counts["warn"] else "")
        return f"ok, {warnings_text}{tail}"
    failed = ", ".join(check.name for check in report.checks if check.status == "fail")
    return (
        f"FAIL: {counts['fail']} failed ({failed}), {warnings_text}; "
        "fix the failures above, then rerun `dlcc doctor`"
    )


def _wrap_hint(text: str, indent: str, width: int) -> list[str]:
    """`text` wrapped to `width`, never inside a `command`, so commands copy-paste whole."""
    glue = "\x00"  # stands for a space inside backticks while wrapping
    text = re.sub(r"`[^`]*`", lambda span: span.group(0).replace(" ", glue), text)
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "     ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace(glue, " ") for line in lines]


def format_table(report: DoctorReport, width: int = 100) -> str:
    """The report as a table: a heading per section, one line per check, its fix below it."""
    name_width = max((len(check.name) for check in report.checks), default=4)
    indent = " " * (2 + 4 + 2 + name_width + 2)  # status, name, spacing: the value's column
    lines = [f"dlcc doctor {report.dlcc_version}"]
    section = None
    for check in report.checks:
        if check.section != section:
            section = check.section
            lines += ["", section or "other"]
        lines.append(
            f"  {STATUS_LABELS[check.status]:<4}  {check.name:<{name_width}}  {check.value}"
        )
        if check.hint:
            lines += _wrap_hint(f"fix: {check.hint}", indent, max(width, len(indent) + 40))
    lines += ["", summary_line(report)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def register(commands) -> None:
    """Add ``dlcc doctor`` to the top-level sub-parsers."""
    import argparse

    from dlcc.cli_options import add_data_dir_argument

    def device_argument(text: str) -> str:
        try:
            return device_name(text)
        except DlccError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parser = commands.add_parser(
        "doctor",
        help="check Python, packages, data, PyTorch and GPUs; smoke-test and time each device",
        description=(
            "Check that this machine can run the course, and say how to fix what cannot. "
            "Exit status 1 when something the course needs is missing or broken, 0 otherwise "
            "(no GPU is only a warning)."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON on stdout instead of the table (redirect to keep it)",
    )
    parser.add_argument(
        "--no-smoke",
        dest="smoke",
        action="store_false",
        help="skip the smoke tests and GEMM timings; only report what is installed",
    )
    parser.add_argument(
        "--device",
        dest="devices",
        action="extend",
        nargs="+",
        type=device_argument,
        metavar="DEVICE",
        help="test only these devices: cpu, cuda (every GPU), cuda:N, mps (default: all found)",
    )
    add_data_dir_argument(parser)
    parser.set_defaults(handler=doctor_command)


def _stderr_progress(label: str) -> None:
    sys.stderr.write(f"\r\033[Kdlcc doctor: checking {label}...")
    sys.stderr.flush()


def doctor_command(args) -> int:
    """Run the checks, print the table (or JSON), return 0 when the course can run here."""
    interactive = sys.stderr.isatty()
    report = run_doctor(
        smoke=args.smoke,
        devices=args.devices,
        data_dir=args.data_dir,
        progress=_stderr_progress if interactive else None,
    )
    if interactive:
        sys.stderr.write("\r\033[K")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_table(report))
    return report.exit_status()
