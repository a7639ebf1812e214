"""The trusted test process's side of a grading: the learner's process, and its modules here.

The grading's pytest process (trusted: the tests, the reference package, the reporting plugin)
never imports the learner's files. `install` puts stand-ins for them in ``sys.modules``
(`LearnerModule`: every attribute is a `dlcc.course.remote` handle to the learner's process),
and `LearnerProcess` starts that process, in the sandbox the grader prepared
(`dlcc.course.supervise` writes the spec), restarts it after it dies, and stops it at a test's
time limit. `TrustedPolicy` is what the learner's process may do with the trusted objects
handed to it.

The plugin (`dlcc.course.pytest_plugin`) calls `install` when pytest starts, `begin_test` and
`end_test` around each test.
"""

from __future__ import annotations

import collections
import ctypes
import importlib.abc
import importlib.machinery
import json
import os
import select
import sys
import threading
import time
import types
from pathlib import Path

from dlcc.course import remote
from dlcc.course.remote import LearnerStopped, Peer, RemoteError

READY_TIMEOUT_S = 60.0
OUTPUT_TAIL_BYTES = 64 * 1024
ALLOWED_REQUESTS = {"getattr", "call", "getitem", "len", "iter", "repr", "type"}


class TrustedPolicy:
    """What the learner's process may reach: the trusted objects handed to it, only their
    public attributes, and only objects of the tests' own modules or of the reference package
    (outside ``dlcc.course`` and every assignment's sources) are handed out."""

    def __init__(self, learner_modules: set[str], closed_modules: set[str], tests: list[str]):
        self.learner_modules = learner_modules  # stand-ins here
        self.closed_modules = closed_modules  # every assignment's sources
        self.tests = [os.path.realpath(folder) + os.sep for folder in tests]

    def is_learner_module(self, module: str) -> bool:
        return module in self.learner_modules

    def _allowed_module(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name.startswith("dlcc.") or name == "dlcc":
            return not name.startswith("dlcc.course") and name not in self.closed_modules
        module = sys.modules.get(name)
        path = os.path.realpath(getattr(module, "__file__", None) or "/nonexistent")
        return any(path.startswith(folder) for folder in self.tests)

    def check_export(self, value) -> None:
        if isinstance(value, types.MethodType):
            function = value.__func__
            if self._allowed_module(getattr(function, "__module__", None)):
                return
        elif isinstance(value, types.FunctionType):
            if self._allowed_module(value.__module__):
                return
        elif not isinstance(value, type | types.ModuleType | types.BuiltinFunctionType):
            if self._allowed_module(type(value).__module__):
                return
        kind = type(value)
        raise RemoteError(
            f"a {kind.__module__}.{kind.__qualname__} made in the test cannot be handed to the "
            "learner's code: only data, the learner's own objects, and objects of the tests' "
            "own classes cross. Make it on the learner's side (dlcc.course.remote.learner_side)"
        )

    def check_request(self, op, target, message: dict) -> None:
        if op not in ALLOWED_REQUESTS:
            raise RemoteError(f"the learner's code may not {op} a test's object")
        if op == "getattr":
            name = message.get("key")
            if not isinstance(name, str) or name.startswith("_"):
                raise AttributeError(
                    "the learner's code may read only public attributes of a test's object, "
                    f"not {name!r}"
                )
        if op == "call" and not callable(target):
            raise TypeError(f"a test's {type(target).__name__} object is not callable")

    def exception_class(self, module: str, name: str):
        """A reference-package exception class to re-raise a learner's error as, or None."""
        if not self._allowed_module(module) or module not in sys.modules:
            return None
        found = sys.modules[module]
        for part in name.split("."):
            found = getattr(found, part, None)
        return found if isinstance(found, type) and issubclass(found, Exception) else None


class TrustedPeer(Peer):
    """The trusted end: re-raises the learner's reference-package exceptions as themselves."""

    def __init__(self, *args, on_lost=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_lost = on_lost

    def lost(self):
        self.closed = True
        if self.on_lost is not None:
            self.on_lost()
        raise LearnerStopped("the learner's process stopped")

    def exception(self, error) -> BaseException:
        if type(error) is dict and self.policy is not None:
            kind = self.policy.exception_class(str(error.get("module")), str(error.get("type")))
            if kind is not None:
                try:
                    made = kind(str(error.get("message", ""))[:4000])
                    made.where = str(error.get("where", ""))[:200]
                    return made
                except Exception:
                    pass
        return super().exception(error)


class LearnerModule(types.ModuleType):
    """A stand-in for one of the learner's modules: its attributes are named handles."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return remote.named(self.__name__, name)

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("__") and name.endswith("__"):
            super().__setattr__(name, value)
            return
        _module_handle(self.__name__).__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        _module_handle(self.__name__).__delattr__(name)


def _module_handle(module: str):
    return remote.Remote._make(remote._active, None, (module, ""))


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, modules: set[str]) -> None:
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.modules:
            return importlib.machinery.ModuleSpec(fullname, self, origin="the learner's process")
        return None

    def create_module(self, spec):
        return LearnerModule(spec.name, f"the learner's {spec.name}, in its own process")

    def exec_module(self, module) -> None:
        pass


class LearnerProcess:
    """The learner's process, started from the grader's spec; a new one after each death."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.process = None
        self.cgroup = None
        self.peer: TrustedPeer | None = None
        self.deadline: float | None = None  # the running test's time limit (monotonic)
        self.limit_s = 0.0
        self.timed_out = False
        self.output = collections.deque(maxlen=OUTPUT_TAIL_BYTES)
        self.starts = 0
        self.broken = ""  # why no learner process can start (its modules hang at import)

    # -- the process
    def ensure(self) -> None:
        if self.broken:
            raise LearnerStopped(self.broken, timed_out=True)
        if self.peer is None or self.peer.closed:
            self.start()

    def start(self) -> None:
        from dlcc.course import sandbox
        from dlcc.course.limits import TreeCgroup

        self.stop()
        self.timed_out = False
        to_learner_read, to_learner_write = os.pipe()
        from_learner_read, from_learner_write = os.pipe()
        output_read, output_write = os.pipe()
        command = [
            part.replace("{read}", str(to_learner_read)).replace("{write}", str(from_learner_write))
            for part in self.spec["command"]
        ]
        if self.spec.get("cgroups"):
            self.cgroup = TreeCgroup.create(
                int(self.spec["memory_mb"]), int(self.spec["processes"])
            )
        try:
            self.process = sandbox.start(
                command,
                cwd=Path(self.spec["cwd"]),
                environment=dict(self.spec["environment"]),
                memory_mb=int(self.spec["memory_mb"]),
                output=output_write,
                pass_fds=(to_learner_read, from_learner_write),
                cgroup=self.cgroup,
            )
        finally:
            for fd in (to_learner_read, from_learner_write, output_write):
                os.close(fd)
        self.starts += 1
        threading.Thread(target=self._read_output, args=(output_read,), daemon=True).start()
        policy = TrustedPolicy(
            set(self.spec["learner_modules"]),
            set(self.spec["closed_modules"]),
            list(self.spec["tests"]),
        )
        self.peer = TrustedPeer(
            from_learner_read, to_learner_write, "trusted", policy, self._wait, on_lost=self._lost
        )
        remote.set_active(self.peer)
        startup_s = float(self.spec.get("startup_timeout_s", READY_TIMEOUT_S))
        deadline, self.deadline = self.deadline, time.monotonic() + startup_s
        try:
            message, _ = self.peer.receive()  # sent once it has imported the learner's modules
        except LearnerStopped as error:
            if not error.timed_out:
                raise
            self.broken = (
                f"not run: importing the learner's modules took over {startup_s:g} s (does the "
                "code loop at import time?)"
            )
            raise LearnerStopped(self.broken, timed_out=True) from None
        finally:
            self.deadline = deadline
        if message.get("kind") != "ready":
            self.stop()
            raise RemoteError("the learner's process did not start properly")

    def _read_output(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                self.output.extend(chunk)

    def output_tail(self, lines: int = 3) -> str:
        text = bytes(self.output).decode("utf-8", "replace")
        kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)[:400]

    def _wait(self, fd: int) -> None:
        """Before each read: wait for the learner's answer, at most until the test's limit."""
        while True:
            timeout = None if self.deadline is None else self.deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                self.timed_out = True
                self.stop()
                raise LearnerStopped(f"timed out after {self.limit_s:g} s", timed_out=True)
            ready, _, _ = select.select([fd], [], [], timeout)
            if ready:
                return

    def _lost(self) -> None:
        """The learner's process closed its end: say how it ended."""
        from dlcc.course import sandbox

        process, cgroup = self.process, self.cgroup
        out_of_memory = cgroup is not None and cgroup.out_of_memory()
        if process is not None:
            try:
                process.wait(timeout=5)
            except Exception:
                sandbox.kill(process, cgroup)
        code = process.returncode if process is not None else None
        self.stop()
        if out_of_memory:
            why = f"was stopped for using over {self.spec['memory_mb']} MB (all its processes)"
        elif code is None:
            why = "stopped"
        else:
            from dlcc.course.sandbox import Isolation

            isolation = Isolation(self.spec.get("level", "none"), "")
            why = sandbox.describe_exit(code, isolation)
        tail = self.output_tail()
        message = f"the learner's process {why} while running this test"
        raise LearnerStopped(message + (f"; its output: {tail}" if tail else ""))

    def stop(self) -> None:
        from dlcc.course import sandbox

        if self.peer is not None:
            self.peer.closed = True
            for fd in (self.peer.read_fd, self.peer.write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if remote._active is self.peer:
                remote.set_active(None)
            self.peer = None
        if self.process is not None:
            if self.process.poll() is None:
                sandbox.kill(self.process, self.cgroup)
            self.process = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None

    # -- around each test
    def begin_test(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.deadline = None
        self.ensure()
        remote.set_active(self.peer)
        self.deadline = time.monotonic() + limit_s

    def end_test(self) -> None:
        self.deadline = None
        if self.peer is not None:
            self.peer.forget_exports()


_learner: LearnerProcess | None = None


def install(spec_path: str) -> LearnerProcess:
    """Stand-ins for the learner's modules; the learner's process, to `start()`. Call it
    before anything imports those modules or ``dlcc.course.remote``: a copy imported earlier
    would bypass the stand-ins, so that is refused."""
    global _learner
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    early = [name for name in spec["learner_modules"] if name in sys.modules]
    if early:
        raise RemoteError(
            f"{early[0]} was imported before the learner's stand-ins were installed: the "
            "reporting plugin must be loaded first (-p)"
        )
    sys.meta_path.insert(0, _Finder(set(spec["learner_modules"])))
    _learner = LearnerProcess(spec)
    _no_ptrace()
    return _learner


def current() -> LearnerProcess | None:
    return _learner


def _no_ptrace() -> None:
    """Make this process non-dumpable: a process of the same user cannot ptrace it or read its
    memory through /proc (where no PID namespace already keeps the learner's process out)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass
