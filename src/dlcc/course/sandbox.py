"""Run the graded tests in a contained subprocess: limits, namespaces, and a clean kill.

What a grading subprocess gets, in every case:

- its own session and process group, which the grader kills as a whole (SIGKILL) on a time-out;
- ``RLIMIT_AS`` = the assignment's ``memory_mb`` (a huge allocation raises MemoryError instead of
  exhausting the machine), ``RLIMIT_CORE`` = 0 (no core dumps), ``RLIMIT_FSIZE`` = 1 GiB per
  file written;
- a clean environment: HOME, TMPDIR and the working directory inside the grading folder,
  ``PYTHONPATH`` = that folder's ``src`` first, BLAS/OpenMP thread counts capped to the cores
  this process may use, and no other variable of the grader's environment (``PATH``, the
  locale and ``DLCC_DATA_DIR`` excepted).

Where the machine allows it (checked once per process by actually trying it), more:

- ``full``: ``unshare --user --map-root-user --net --mount --pid --fork --kill-child``. No
  network (only a loopback device, down). Every mount is read-only except the grading folder's
  scratch, home, tmp and events folders; the package and test copies in the grading folder are
  read-only too. The mounts are locked by a nested user namespace, so the code cannot remount
  them writable. A PID namespace: when the tests' process exits or is killed, every process it
  started dies with it. ``/dev/shm`` is a private 512 MB tmpfs.
- ``network``: ``unshare --user --map-root-user --net`` only: no network, but the filesystem is
  as writable as it is for the grader's own user.
- ``none``: limits and environment only.

Not protected at any level: reading files the grader's user can read (the copied tests
included: hidden tests are copied only with ``--hidden``), CPU use up to the time limits,
and the results themselves: the reporting plugin runs in the same process as the graded code,
so deliberately forged results, or text the code puts in an exception message (which becomes
feedback), are not prevented. This is protection against buggy and careless code, and against
harm to the machine; not a defence of the scores against a determined cheat.

Set ``DLCC_GRADE_SANDBOX`` to ``network`` or ``none`` to use less than the machine offers.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dlcc.course.errors import CourseError

LEVELS = ("full", "network", "none")
FILE_SIZE_LIMIT = 1 << 30
SANDBOX_INIT = Path(__file__).with_name("sandbox_init.py")
UNSHARE_FULL = [
    "--user",
    "--map-root-user",
    "--net",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
]
UNSHARE_NETWORK = ["--user", "--map-root-user", "--net"]
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)
DESCRIPTIONS = {
    "full": "no network; read-only filesystem outside the grading folder; own PID namespace",
    "network": "no network (the filesystem is NOT read-only: unshare could not mount)",
    "none": "no namespaces available (network and filesystem NOT isolated)",
}


@dataclass(frozen=True)
class Isolation:
    """The sandbox level in use and why."""

    level: str  # one of LEVELS
    note: str  # what it protects, and why not more

    @property
    def pid_namespace(self) -> bool:
        return self.level == "full"


_detected: Isolation | None = None


def detect_isolation() -> Isolation:
    """The strongest level this machine supports (tried once, then cached), or the one that
    ``DLCC_GRADE_SANDBOX`` asks for."""
    global _detected
    requested = os.environ.get("DLCC_GRADE_SANDBOX", "").strip().lower() or None
    if requested is not None and requested not in LEVELS:
        raise CourseError(
            f"DLCC_GRADE_SANDBOX={requested!r}: expected one of {', '.join(LEVELS)} "
            "(or unset it to use the strongest available)"
        )
    if _detected is None:
        _detected = _probe()
    if requested is None or LEVELS.index(requested) >= LEVELS.index(_detected.level):
        if requested is None or requested == _detected.level:
            return _detected
        return Isolation(requested, f"{DESCRIPTIONS[requested]} (DLCC_GRADE_SANDBOX)")
    raise CourseError(
        f"DLCC_GRADE_SANDBOX={requested} is not available here: {_detected.note}; "
        f"use {_detected.level} or unset it"
    )


def _probe() -> Isolation:
    unshare = shutil.which("unshare")
    if unshare is None:
        return Isolation("none", DESCRIPTIONS["none"] + ": the `unshare` program is missing")
    with tempfile.TemporaryDirectory(prefix="dlcc-sandbox-probe-") as folder:
        writable = Path(folder) / "rw"
        writable.mkdir()
        full = [unshare, *UNSHARE_FULL, sys.executable, str(SANDBOX_INIT)]
        full += ["--rw", str(writable), "--probe"]
        if _succeeds(full):
            return Isolation("full", DESCRIPTIONS["full"])
    if _succeeds([unshare, *UNSHARE_NETWORK, sys.executable, "-c", "pass"]):
        return Isolation("network", DESCRIPTIONS["network"])
    return Isolation("none", DESCRIPTIONS["none"] + ": `unshare --user --net` is not permitted")


def _succeeds(command: list[str]) -> bool:
    try:
        result = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def wrap_command(
    command: list[str], isolation: Isolation, init_script: Path, writable: list[Path]
) -> list[str]:
    """`command` prefixed with what puts it inside the sandbox at `isolation`'s level."""
    unshare = shutil.which("unshare") or "unshare"
    if isolation.level == "full":
        rw_options = [option for folder in writable for option in ("--rw", str(folder))]
        return [
            unshare,
            *UNSHARE_FULL,
            sys.executable,
            str(init_script),
            *rw_options,
            "--",
            *command,
        ]
    if isolation.level == "network":
        return [unshare, *UNSHARE_NETWORK, *command]
    return list(command)


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def child_environment(home: Path, tmp: Path, python_path: list[Path], extra: dict) -> dict:
    """The whole environment of a grading subprocess (nothing else is inherited)."""
    threads = str(cpu_count())
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "TMP": str(tmp),
        "TEMP": str(tmp),
        "PYTHONPATH": os.pathsep.join(str(path) for path in python_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONFAULTHANDLER": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        **{name: threads for name in THREAD_VARIABLES},
    }
    if "DLCC_DATA_DIR" in os.environ:
        environment["DLCC_DATA_DIR"] = os.environ["DLCC_DATA_DIR"]
    environment.update(extra)
    return environment


def _limit_resources(memory_mb: int) -> None:
    """Runs in the child between fork and exec."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def start(
    command: list[str], *, cwd: Path, environment: dict, memory_mb: int, log: Path
) -> subprocess.Popen:
    """Start `command` (already wrapped) in its own session, limits applied, output to `log`."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: _limit_resources(memory_mb),
            close_fds=True,
        )


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process group and every descendant still known, then reap the process."""
    descendants = []
    try:
        import psutil

        descendants = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # gone already, or psutil missing: the group kill still applies
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except Exception:
            pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
        pass


def describe_exit(returncode: int, isolation: Isolation) -> str:
    """ "exited with code 3", "was killed by signal 11 (SIGSEGV)"."""
    signal_number = None
    if returncode < 0:
        signal_number = -returncode
    elif isolation.pid_namespace and returncode > 128:  # the init passes signals on as 128 + N
        signal_number = returncode - 128
    if signal_number is not None:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {signal_number} ({name})"
    return f"exited with code {returncode}"
