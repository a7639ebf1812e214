"""Limits for a grading process's whole tree: a cgroup where the machine allows one.

`TreeCgroup.create` makes one fresh cgroup per grading process, with ``pids.max`` (a fork bomb
gets EAGAIN at the limit) and a memory limit (the kernel's OOM killer stops the tree when all
its processes together go over). The grading process joins it between fork and exec (`enter`),
before any graded code runs, so every process the tests start is counted. Tried in order:

- cgroup v2: a child of this process's own cgroup, where ``memory`` and ``pids`` are enabled
  for children (``cgroup.subtree_control``);
- cgroup v1: children of the ``pids`` and ``memory`` hierarchies (as root, typically).

Where neither can be made, `create` returns None and the sandbox falls back on per-process
limits (see `dlcc.course.sandbox`), saying so in the report.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class TreeCgroup:
    """One grading process tree's cgroup(s): v2 (one folder) or v1 (a pids and a memory one)."""

    def __init__(self, version: int, folders: list[Path]) -> None:
        self.version = version
        self.folders = folders

    @property
    def description(self) -> str:
        return f"cgroup v{self.version}"

    @classmethod
    def create(cls, memory_mb: int, processes: int) -> TreeCgroup | None:
        """A new cgroup with these limits, or None where this machine allows none."""
        name = f"dlcc-grade-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        for make in (cls._create_v2, cls._create_v1):
            try:
                made = make(name, memory_mb * 1024 * 1024, processes)
            except OSError:
                made = None
            if made is not None:
                return made
        return None

    @classmethod
    def _create_v2(cls, name: str, memory: int, processes: int) -> TreeCgroup | None:
        own = _own_cgroup_v2()
        if own is None:
            return None
        folder = own / name
        folder.mkdir()
        made = cls(2, [folder])
        try:
            controllers = (folder / "cgroup.controllers").read_text().split()
            if "memory" not in controllers or "pids" not in controllers:
                made.remove()
                return None
            (folder / "memory.max").write_text(str(memory))
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
            (folder / "pids.max").write_text(str(processes))
        except OSError:
            made.remove()
            raise
        return made

    @classmethod
    def _create_v1(cls, name: str, memory: int, processes: int) -> TreeCgroup | None:
        pids_root, memory_root = CGROUP_ROOT / "pids", CGROUP_ROOT / "memory"
        if not (pids_root / "cgroup.procs").exists() or not (memory_root / "tasks").exists():
            return None
        made = cls(1, [])
        try:
            for root in (pids_root, memory_root):
                folder = root / _own_cgroup_v1(root.name) / name
                folder.mkdir()
                made.folders.append(folder)
            made.folders[0].joinpath("pids.max").write_text(str(processes))
            memory_folder = made.folders[1]
            memory_folder.joinpath("memory.limit_in_bytes").write_text(str(memory))
            swap = memory_folder / "memory.memsw.limit_in_bytes"
            if swap.exists():
                try:
                    swap.write_text(str(memory))
                except OSError:
                    pass  # no swap accounting: the memory limit still holds
            if int(memory_folder.joinpath("memory.limit_in_bytes").read_text()) > memory:
                raise OSError("the memory limit did not take")
        except OSError:
            made.remove()
            raise
        return made

    def enter(self) -> None:
        """Move the calling process into the cgroup (in the child, between fork and exec)."""
        pid = str(os.getpid()).encode()
        for folder in self.folders:
            descriptor = os.open(folder / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(descriptor, pid)
            finally:
                os.close(descriptor)

    def out_of_memory(self) -> bool:
        """Whether the kernel stopped a process of the tree for going over the memory limit."""
        try:
            if self.version == 2:
                for line in (self.folders[0] / "memory.events").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom", "oom_kill") and int(value) > 0:
                        return True
                return False
            for line in (self.folders[1] / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
            return int((self.folders[1] / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError, IndexError):
            return False

    def pids(self) -> list[int]:
        found = set()
        for folder in self.folders:
            try:
                text = (folder / "cgroup.procs").read_text()
            except OSError:
                continue
            found.update(int(line) for line in text.split() if line.isdigit())
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL every process still in the cgroup (a fork bomb's children included)."""
        if self.version == 2 and (self.folders[0] / "cgroup.kill").exists():
            try:
                (self.folders[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        for _ in range(100):  # kill until empty: a process may fork while it is being killed
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup folder(s)."""
        self.kill()
        for folder in reversed(self.folders):
            for _ in range(50):  # the kernel may take a moment to release reaped processes
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _own_cgroup_v2() -> Path | None:
    """The cgroup v2 folder of this process, where it is mounted at /sys/fs/cgroup."""
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return CGROUP_ROOT / line[3:].lstrip("/")
    return None


def _own_cgroup_v1(controller: str) -> str:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.lstrip("/")
    return ""
