"""Run the learner's code in a contained subprocess: limits, namespaces, and a clean kill.

The sandboxed process is the learner's (`dlcc.course.learner` starts it from the spec that
`dlcc.course.supervise` writes); the tests' own process gets the limits and clean environment
below but no namespaces. What a sandboxed process gets, in every case:

- its own session and process group, which the grader kills as a whole (SIGKILL) on a time-out;
- a limit on processes and one on memory for its whole tree, where the machine allows a cgroup
  (`dlcc.course.limits`: ``pids.max`` = ``DLCC_GRADE_PROCESSES``, default 256 tasks, threads
  included; the memory limit = the assignment's ``memory_mb`` for all its processes together);
- ``RLIMIT_AS`` = ``memory_mb`` per process too (a huge allocation raises MemoryError rather
  than waking the OOM killer), ``RLIMIT_CORE`` = 0, ``RLIMIT_FSIZE`` = 1 GiB per file;
- a clean environment: HOME, TMPDIR and the working directory inside the grading folder,
  ``PYTHONPATH`` = that folder's ``src`` first, BLAS/OpenMP thread counts capped to the cores
  this process may use, and no other variable of the grader's environment (``PATH``, the
  locale and ``DLCC_DATA_DIR`` excepted);
- its output and its events come back through pipes that the grader reads with bounds.

Where the machine allows it (checked once per process by actually trying it), more:

- ``full``: ``unshare --user --map-root-user --net --mount --pid --fork --kill-child``. No
  network (only a loopback device, down). The course root, the grader's own ``dlcc`` source
  (an editable install's folder, or the installed package) and the temporary folder (other
  gradings' work folders) are hidden under empty tmpfs mounts (`hidden_paths`). The scratch,
  home and tmp folders are one tmpfs of ``DLCC_GRADE_SCRATCH_MB`` (default 1024) MB; every
  other mount is read-only, the package and test copies in the work folder included. The
  mounts are locked by a nested user namespace. ``RLIMIT_NPROC`` is set in the sandbox's user
  namespace (it bounds processes where no cgroup could be made, unless the grader runs as the
  real root, to which the kernel does not apply it). A PID namespace: when the tests' process
  exits or is killed, every process it started dies with it. ``/dev/shm`` is a private 512 MB
  tmpfs.
- ``network``: ``unshare --user --map-root-user --net`` only: no network, but the filesystem is
  as readable and writable as it is for the grader's own user.
- ``none``: limits and environment only.

`Isolation.limits` says which process, memory and disk limits were set, and the report shows
it. Not protected at any level: reading files the grader's user can read outside the hidden
folders (at ``network`` and ``none``: everything, the reference and the tests included), and
CPU use up to the time limits. The report and the expected values live in the tests' process,
which the learner's code reaches only through `dlcc.course.remote`'s requests; that process is
non-dumpable, so no process of the same user can ptrace it or read its memory, except at
``none`` when the grader runs as root (root may ptrace anything outside a user namespace).

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
from dlcc.course.limits import TreeCgroup

LEVELS = ("full", "network", "none")
FILE_SIZE_LIMIT = 1 << 30
DEFAULT_PROCESSES = 256  # tasks (threads count) in one grading process tree
DEFAULT_SCRATCH_MB = 1024  # the one tmpfs holding scratch, home and tmp
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
    "full": (
        "no network; read-only filesystem outside the grading folder; course root, grader's "
        "dlcc source and temporary folder hidden; own PID namespace"
    ),
    "network": "no network (the filesystem is NOT read-only: unshare could not mount)",
    "none": "no namespaces available (network and filesystem NOT isolated)",
}


@dataclass(frozen=True)
class Isolation:
    """The sandbox level in use and why."""

    level: str  # one of LEVELS
    note: str  # what it protects, and why not more (the limits included)
    limits: str = ""  # which process, memory and disk limits are set
    cgroups: bool = False  # whether a cgroup per grading process can be made here

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
        level = requested or _detected.level
        note = _detected.note
        if level != _detected.level:
            note = f"{DESCRIPTIONS[level]} (DLCC_GRADE_SANDBOX)"
        limits = describe_limits(level, _detected.cgroups)
        return Isolation(level, f"{note}; {limits}", limits, _detected.cgroups)
    raise CourseError(
        f"DLCC_GRADE_SANDBOX={requested} is not available here: {_detected.note}; "
        f"use {_detected.level} or unset it"
    )


def _probe() -> Isolation:
    cgroups = _probe_cgroups()
    unshare = shutil.which("unshare")
    if unshare is None:
        note = DESCRIPTIONS["none"] + ": the `unshare` program is missing"
        return Isolation("none", note, cgroups=cgroups)
    with tempfile.TemporaryDirectory(prefix="dlcc-sandbox-probe-") as folder:
        writable = Path(folder) / "rw"
        writable.mkdir()
        stage = Path(folder) / "stage"
        stage.mkdir()
        full = [unshare, *UNSHARE_FULL, sys.executable, str(SANDBOX_INIT)]
        full += ["--rw", str(writable), "--tmpfs", "1", str(stage), "--probe"]
        for path in hidden_paths(Path(folder) / "none")[0]:
            full += ["--hide", str(path)]
        full += ["--keep", folder, "--keep", sys.prefix, "--keep", sys.base_prefix]
        if _succeeds(full):
            return Isolation("full", DESCRIPTIONS["full"], cgroups=cgroups)
    if _succeeds([unshare, *UNSHARE_NETWORK, sys.executable, "-c", "pass"]):
        return Isolation("network", DESCRIPTIONS["network"], cgroups=cgroups)
    note = DESCRIPTIONS["none"] + ": `unshare --user --net` is not permitted"
    return Isolation("none", note, cgroups=cgroups)


def _probe_cgroups() -> bool:
    made = TreeCgroup.create(64, 16)
    if made is None:
        return False
    made.remove()
    return True


def processes_limit() -> int:
    """The most tasks one grading process tree may have (``DLCC_GRADE_PROCESSES``)."""
    return _positive_setting("DLCC_GRADE_PROCESSES", DEFAULT_PROCESSES)


def scratch_mb() -> int:
    """The size of the tmpfs for scratch, home and tmp (``DLCC_GRADE_SCRATCH_MB``)."""
    return _positive_setting("DLCC_GRADE_SCRATCH_MB", DEFAULT_SCRATCH_MB)


def _positive_setting(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise CourseError(f"{name}={value!r}: expected a positive whole number")
    return int(value)


def describe_limits(level: str, cgroups: bool) -> str:
    """One line: which process, memory and disk limits a grading process gets at `level`."""
    processes = processes_limit()
    if cgroups:
        parts = [
            f"processes: at most {processes} for the whole tree (a pids cgroup)",
            "memory: one cap (memory_mb) for the whole process tree (a memory cgroup)",
        ]
    else:
        nproc = "RLIMIT_NPROC in the user namespace" if level == "full" else "no limit"
        if level == "full" and os.geteuid() == 0:
            nproc += " (NOT enforced for the real root)"
        parts = [
            f"processes: {nproc} (no cgroup here)",
            f"memory: memory_mb per process only (RLIMIT_AS), so up to {processes} x memory_mb "
            "for the whole tree (no cgroup here)",
        ]
    if level == "full":
        parts.append(f"disk: a {scratch_mb()} MB tmpfs for scratch, home and tmp")
    else:
        parts.append("disk: 1 GiB per file (RLIMIT_FSIZE), no total quota")
    return "; ".join(parts)


def hidden_paths(work: Path) -> tuple[list[Path], list[Path]]:
    """(folders to hide, folders under them to keep visible) for a sandbox on work folder
    `work`: the temporary folder and every folder this process imports a ``dlcc`` from (the
    course root is added by the caller); kept: the Python installation and `work`."""
    import dlcc

    package = Path(dlcc.__file__).resolve().parent
    hidden = {Path(tempfile.gettempdir()).resolve(), package}
    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        if (folder / "dlcc").is_dir() and folder != work / "src":
            hidden.add(folder)
    kept = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    kept.add(Path(sys.executable).resolve().parent)
    kept.add(work.resolve())
    if os.environ.get("DLCC_DATA_DIR"):
        kept.add(Path(os.environ["DLCC_DATA_DIR"]).resolve())
    return sorted(hidden), sorted(kept)


def _succeeds(command: list[str]) -> bool:
    try:
        result = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@dataclass(frozen=True)
class Mounts:
    """What the full sandbox mounts: see `dlcc.course.sandbox_init`."""

    writable: list[Path]  # the folders that stay writable (one tmpfs)
    stage: Path  # an empty folder to mount that tmpfs on first
    cwd: Path  # the working directory, set after the mounts
    hidden: list[Path]  # empty tmpfs over each
    kept: list[Path]  # bound back where a hidden folder covered them


def wrap_command(command: list[str], isolation: Isolation, init_script: Path, mounts: Mounts):
    """`command` prefixed with what puts it inside the sandbox at `isolation`'s level."""
    unshare = shutil.which("unshare") or "unshare"
    if isolation.level == "full":
        options = [option for folder in mounts.writable for option in ("--rw", str(folder))]
        options += ["--tmpfs", str(scratch_mb()), str(mounts.stage), "--cwd", str(mounts.cwd)]
        options += [option for folder in mounts.hidden for option in ("--hide", str(folder))]
        options += [option for folder in mounts.kept for option in ("--keep", str(folder))]
        options += ["--nproc", str(processes_limit())]
        return [unshare, *UNSHARE_FULL, sys.executable, str(init_script), *options, "--", *command]
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


def _limit_resources(memory_mb: int, cgroup: TreeCgroup | None) -> None:
    """Runs in the child between fork and exec."""
    if cgroup is not None:
        cgroup.enter()
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def start(
    command: list[str],
    *,
    cwd: Path,
    environment: dict,
    memory_mb: int,
    output: int,
    pass_fds: tuple[int, ...] = (),
    cgroup: TreeCgroup | None = None,
) -> subprocess.Popen:
    """Start `command` (already wrapped) in its own session and `cgroup`, limits applied, its
    stdout and stderr on file descriptor `output`, `pass_fds` inherited."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: _limit_resources(memory_mb, cgroup),
        close_fds=True,
        pass_fds=pass_fds,
    )


def kill(process: subprocess.Popen, cgroup: TreeCgroup | None = None) -> None:
    """SIGKILL the process group, the cgroup and every descendant still known; reap."""
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
    if cgroup is not None:
        cgroup.kill()
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
