"""The machine: Python, OS, CPU cores, RAM, free disk and datasets, and the helpers they share."""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import sys
from pathlib import Path

from dlcc.doctor.report import Check

MIN_PYTHON = (3, 10)
LOW_RAM_GIB = 4.0
LOW_AVAILABLE_RAM_GIB = 1.0
LOW_DISK_GIB = 2.0


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
