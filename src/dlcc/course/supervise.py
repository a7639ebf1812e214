"""Supervising the graded tests: pytest in subprocesses, watched test by test.

`Runner` starts pytest, the trusted test process, on a filled work folder (see
`dlcc.course.workdir`), in a cgroup of its own where the machine allows one. It writes the spec
of the learner's process, which that test process starts (`dlcc.course.learner`): sandboxed at
the machine's level (`dlcc.course.sandbox`), in a cgroup of its own, seeing only the learner's
half of the work folder. `Watch` follows the test process through the authenticated events
that `dlcc.course.pytest_plugin` writes to a pipe (`dlcc.course.channel`: bounded, and only
in an honest run's order; anything else is rejected, the process killed, and the test it was
running earns nothing). A test over its time limit, or a process that dies mid-test, costs
that one test (`Status.TIMED_OUT`, `Status.CRASHED`); the runner then starts a new process for
the tests left. What pytest
collects must match the catalogue exactly: anything else is an instructor error (`CourseError`).

Everything here reads the events as data; nothing imports the graded code.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from enum import Enum
from pathlib import Path

from dlcc.course import sandbox
from dlcc.course.catalogue import Assignment, GradedTest, format_points
from dlcc.course.channel import EventChannel, OutputTail, Protocol, Rejected
from dlcc.course.errors import CourseError
from dlcc.course.limits import TreeCgroup
from dlcc.course.outcome import Status, TestOutcome, one_line
from dlcc.course.sandbox_init import SETUP_FAILED
from dlcc.course.workdir import PLUGIN_MODULE, Workspace, remove_tree

POLL_INTERVAL_S = 0.05
DEFAULT_TEST_TIMEOUT_S = 60.0  # only for a node id the catalogue has no limit for
# The test process stops a test's learner process at the test's limit; this watch kills the
# test process itself only this much later (the trusted side's own work on that test included).
OUTER_GRACE_S = 15.0
# The learner process's program: the runtime's copy of `dlcc.course.remote` serves, and is the
# module that the public test helpers' ``dlcc.course.remote`` imports find there.
LEARNER_MAIN = (
    "import sys; import dlcc_grade.remote as r; sys.modules['dlcc.course.remote'] = r; "
    "sys.exit(r.main(sys.argv[1:]))"
)


class Ending(Enum):
    """Why `Watch.follow` stopped following a pytest process."""

    EXITED = "exit"  # the process exited by itself
    TEST_TIMEOUT = "test_timeout"  # the running test went over its limit
    OVERALL_TIMEOUT = "overall_timeout"  # the whole grading's limit ran out
    IDLE_TIMEOUT = "idle_timeout"  # no test running, and no event, for startup_timeout_s
    REJECTED = "rejected"  # its events were forged, malformed, over-long or out of order


class Runner:
    """Runs the selected tests in as many pytest processes as crashes and time-outs require."""

    def __init__(
        self,
        workspace: Workspace,
        assignment: Assignment,
        selected: list[GradedTest],
        isolation: sandbox.Isolation,
        startup_timeout_s: float,
        overall_timeout_s: float,
        all_sources: list[str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.all_sources = list(all_sources or assignment.sources)  # every assignment's
        self.assignment = assignment
        self.selected = selected
        self.isolation = isolation
        self.startup_timeout_s = startup_timeout_s
        self.overall_timeout_s = overall_timeout_s
        self.prefix = f"{assignment.tests_dir}/"
        self.limits = {self.nodeid(t): assignment.test_timeout(t) for t in selected}
        self.results: dict[str, TestOutcome] = {}  # by node id
        self.collect_errors: dict[str, str] = {}
        self.collect_skips: set[str] = set()  # collectors the graded code skipped
        self.collection_checked = False
        self.notes: list[str] = []

    def nodeid(self, test: GradedTest) -> str:
        return self.prefix + test.test

    def outcome(self, test: GradedTest) -> TestOutcome:
        """`test`'s outcome after `run()`."""
        return self.results.get(self.nodeid(test), TestOutcome(Status.NOT_RUN, "not run"))

    def run(self) -> dict[str, TestOutcome]:
        """Run every selected test (or say why not); the outcomes by node id."""
        self._write_learner_spec()
        deadline = time.monotonic() + self.overall_timeout_s
        for run_number in range(1, len(self.selected) + 2):
            remaining = self._remaining()
            if not remaining:
                break
            watch = self._run_once(run_number, remaining, deadline)
            self.results.update(watch.finished)
            if not self._after_run(watch, run_number):
                break
        self._not_run(self._remaining(), "not run: the grader stopped before it")
        return self.results

    def _remaining(self) -> list[str]:
        return [self.nodeid(t) for t in self.selected if self.nodeid(t) not in self.results]

    def _not_run(self, nodeids: list[str], message: str) -> None:
        for nodeid in nodeids:
            self.results[nodeid] = TestOutcome(Status.NOT_RUN, message)

    def _after_run(self, watch: Watch, run_number: int) -> bool:
        """Record what the run's ending means; whether to start another process."""
        self._mark_uncollected()
        current = watch.current
        if watch.ended is Ending.REJECTED:
            message = f"the test process's report was rejected: {watch.rejected}"
            if current is not None:
                self.results[current] = TestOutcome(Status.ERROR, message)
                return True
            self._not_run(self._remaining(), f"not run: {message}")
            return False
        if watch.ended is Ending.TEST_TIMEOUT:
            limit = format_points(self.limits[current])
            self.results[current] = TestOutcome(Status.TIMED_OUT, f"timed out after {limit} s")
            return True
        if watch.ended is Ending.OVERALL_TIMEOUT:
            limit = format_points(round(self.overall_timeout_s, 1))
            if current is not None:
                message = f"timed out: the grading time limit ({limit} s) ran out"
                self.results[current] = TestOutcome(Status.TIMED_OUT, message)
            message = f"not run: the grading time limit ({limit} s) ran out before it"
            self._not_run(self._remaining(), message)
            return False
        if watch.ended is Ending.IDLE_TIMEOUT:
            seconds = format_points(self.startup_timeout_s)
            if watch.collected is None:
                message = (
                    f"not run: importing the tests took over {seconds} s (does the code loop "
                    "at import time?)"
                )
            else:
                message = f"not run: the test process stalled for {seconds} s between tests"
            if watch.finished:
                return True
            self._not_run(self._remaining(), message)
            return False
        # The process exited.
        exit_text = sandbox.describe_exit(watch.returncode, self.isolation)
        if current is not None:
            message = f"the test process {exit_text} while running this test"
            if watch.out_of_memory and watch.returncode in (-9, 137):
                message = (
                    f"the test process was stopped for using over {self.assignment.memory_mb} "
                    "MB (all its processes together) while running this test"
                )
            self.results[current] = TestOutcome(Status.CRASHED, message)
            return True
        if watch.returncode == SETUP_FAILED and watch.configured is None:
            raise CourseError(
                f"the grading sandbox could not be set up: {_tail(watch.log)}; set "
                "DLCC_GRADE_SANDBOX=network (or none) to grade with less isolation"
            )
        if watch.finished and self._remaining():
            return True  # it got somewhere: try the rest in a new process
        if self._remaining():
            when = "before collecting the tests" if watch.collected is None else "before it ran"
            self._not_run(self._remaining(), f"not run: the test process {exit_text} {when}")
            self.notes.append(f"run {run_number} ended early; its last output: {_tail(watch.log)}")
        return False

    def _mark_uncollected(self) -> None:
        for nodeid in self._remaining():
            for path, message in self.collect_errors.items():
                if _under(nodeid, path) and path in self.collect_skips:
                    self.results[nodeid] = TestOutcome(Status.SKIPPED, message)
                    break
                if _under(nodeid, path):
                    self._not_run([nodeid], f"could not be collected: {message}")
                    break

    def _write_learner_spec(self) -> None:
        """The learner's process, as the test process is to start it (`dlcc.course.learner`)."""
        workspace = self.workspace
        serve = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else [])]
        serve += ["-c", LEARNER_MAIN, "--serve", "{read}", "{write}"]
        command = sandbox.wrap_command(
            serve,
            self.isolation,
            workspace.harness / "sandbox_init.py",
            workspace.mounts(self.hidden_paths(workspace.learner)),
        )
        environment = sandbox.child_environment(
            workspace.home,
            workspace.tmp,
            [
                workspace.learner_src,
                workspace.learner_tests / self.assignment.tests_dir,
                workspace.learner_harness,
            ],
            {"DLCC_GRADE_PRELOAD": ",".join(module_name(s) for s in self.assignment.sources)},
        )
        spec = {
            "command": command,
            "environment": environment,
            "cwd": str(workspace.scratch),
            "memory_mb": self.assignment.memory_mb,
            "processes": sandbox.processes_limit(),
            "cgroups": self.isolation.cgroups,
            "level": self.isolation.level,
            "startup_timeout_s": self.startup_timeout_s,
            "learner_modules": [module_name(s) for s in self.assignment.sources],
            "closed_modules": sorted(module_name(s) for s in self.all_sources),
            "tests": [str(workspace.graded / self.assignment.tests_dir)],
        }
        (workspace.harness / "learner.json").write_text(json.dumps(spec), encoding="utf-8")
        limits = {nodeid: limit for nodeid, limit in self.limits.items()}
        (workspace.harness / "limits.json").write_text(json.dumps(limits), encoding="utf-8")

    def _run_once(self, run_number: int, remaining: list[str], deadline: float) -> Watch:
        workspace = self.workspace
        select = workspace.events / f"select-{run_number}.txt"
        select.write_text("".join(f"{nodeid}\n" for nodeid in remaining), encoding="utf-8")
        log = workspace.events / f"run-{run_number}.log"
        for folder in (workspace.scratch, workspace.home, workspace.tmp):
            remove_tree(folder)  # each process starts clean: nothing planted by an earlier one
            folder.mkdir()
        key = secrets.token_hex(32).encode()
        key_read, key_write = os.pipe()
        os.write(key_write, key)
        os.close(key_write)
        events_read, events_write = os.pipe()
        output_read, output_write = os.pipe()
        sources = [workspace.learner_source(s) for s in self.assignment.sources]
        environment = sandbox.child_environment(
            workspace.trusted / "home",
            workspace.trusted / "tmp",
            [workspace.src, workspace.harness],
            {
                "DLCC_GRADE_EVENTS_FD": str(events_write),
                "DLCC_GRADE_KEY_FD": str(key_read),
                "DLCC_GRADE_SELECT": str(select),
                "DLCC_GRADE_SOURCES": os.pathsep.join(str(path) for path in sources),
                "DLCC_GRADE_PACKAGE": str(workspace.src),
                "DLCC_GRADE_LEARNER": str(workspace.harness / "learner.json"),
                "DLCC_GRADE_LIMITS": str(workspace.harness / "limits.json"),
            },
        )
        pytest_command = [
            sys.executable,
            *(["-P"] if sys.version_info >= (3, 11) else []),  # no cwd on sys.path
            "-m",
            "pytest",
            "-c",
            str(workspace.graded / "pytest.ini"),
            "--rootdir",
            str(workspace.graded),
            "-p",
            PLUGIN_MODULE,
            "-q",
            "--continue-on-collection-errors",
            str(workspace.graded / self.assignment.tests_dir),
        ]
        # Trusted: not sandboxed itself; the learner's code runs in a process of its own.
        command, cwd = pytest_command, workspace.trusted / "scratch"
        cgroup = None
        if self.isolation.cgroups:
            cgroup = TreeCgroup.create(self.assignment.memory_mb, sandbox.processes_limit())
        channel, output = EventChannel(events_read, key), OutputTail(output_read)
        try:
            process = sandbox.start(
                command,
                cwd=cwd,
                environment=environment,
                memory_mb=self.assignment.memory_mb,
                output=output_write,
                pass_fds=(key_read, events_write),
                cgroup=cgroup,
            )
        except BaseException:
            channel.close()
            output.close()
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in (key_read, events_write, output_write):
                os.close(fd)
        watch = Watch(process, channel, output, set(remaining), cgroup)
        try:
            watch.follow(self, deadline)
            watch.drain(self)
        finally:
            if process.poll() is None:
                sandbox.kill(process, cgroup)
            if cgroup is not None:
                watch.out_of_memory = cgroup.out_of_memory()
                cgroup.remove()
            output.read()
            channel.close()
            output.close()
            log.write_text(output.text(), encoding="utf-8")
        return watch

    def hidden_paths(self, visible: Path) -> tuple[list[Path], list[Path]]:
        """What the full sandbox hides (the course root among them) and keeps visible, for a
        process that may see the work folder's `visible` part."""
        hidden, kept = sandbox.hidden_paths(visible)
        return sorted({*hidden, self.workspace.course_root.resolve()}), kept

    def on_event(self, event: dict) -> None:
        """Instructor errors found in the events: raise (the caller kills the process)."""
        kind = event.get("event")
        if kind == "configured":
            location = str(event.get("dlcc", ""))
            if location.startswith("cannot start the learner's process"):
                raise CourseError(
                    f"{location}; set DLCC_GRADE_SANDBOX=network (or none) to grade with less "
                    "isolation"
                )
            if str(self.workspace.src.resolve()) not in location:
                raise CourseError(
                    f"the grading process imported dlcc from {location}, not from the work "
                    f"folder {self.workspace.src}: is a non-editable dlcc installed with a .pth "
                    "that comes before PYTHONPATH?"
                )
        elif kind == "collect_error":
            self.collect_errors[str(event.get("nodeid", ""))] = str(event.get("message", ""))
            if event.get("skipped"):
                self.collect_skips.add(str(event.get("nodeid", "")))
        elif kind == "collected" and not self.collection_checked:
            self.collection_checked = True
            self._check_collection([str(n) for n in event.get("nodeids", [])])

    def _check_collection(self, collected: list[str]) -> None:
        """The tests pytest collects must be exactly the catalogue's (files that failed to
        import aside): anything else is an instructor error."""
        expected = {self.nodeid(t) for t in self.selected}  # hidden ones were left out
        found = set(collected)
        context = f"{self.assignment.id} (tests_dir {self.assignment.tests_dir})"
        extra = sorted(n for n in found if n not in expected)
        missing = sorted(
            n for n in expected - found if not any(_under(n, path) for path in self.collect_errors)
        )
        problems = []
        if missing:
            problems.append(
                f"the catalogue lists {missing[0].removeprefix(self.prefix)} but pytest did not "
                f"collect it ({len(missing)} such test(s)): fix the test id in the catalogue"
            )
        if extra:
            problems.append(
                f"pytest collected {extra[0].removeprefix(self.prefix)} but the catalogue does "
                f"not list it ({len(extra)} such test(s)): add a [[{self.assignment.id}.tests]] "
                "entry for it, or move it out of tests_dir"
            )
        if problems:
            raise CourseError(f"{context}: " + "; ".join(problems))


class Watch:
    """Follows one pytest process through its events pipe."""

    def __init__(self, process, channel, output, selected, cgroup=None) -> None:
        self.process = process
        self.channel = channel
        self.output = output
        self.protocol = Protocol(selected)
        self.cgroup = cgroup
        self.finished: dict[str, TestOutcome] = {}  # by node id
        self.current: str | None = None
        self.current_started = 0.0
        self.last_activity = time.monotonic()
        self.collected: list[str] | None = None
        self.configured: dict | None = None
        self.ended = Ending.EXITED
        self.returncode: int | None = None
        self.rejected = ""  # why the events were rejected (Ending.REJECTED)
        self.out_of_memory = False  # the cgroup's memory limit stopped a process

    @property
    def log(self) -> str:
        return self.output.text()

    def follow(self, runner: Runner, deadline: float) -> None:
        """Until the process exits or a limit runs out (then kill it and say which)."""
        while True:
            returncode = self.process.poll()
            self.drain(runner)
            if self.ended is Ending.REJECTED:
                sandbox.kill(self.process, self.cgroup)
                self.returncode = self.process.returncode
                return
            if returncode is not None:
                self.returncode = returncode
                return
            now = time.monotonic()
            if now > deadline:
                self.ended = Ending.OVERALL_TIMEOUT
            elif self.current is not None:
                limit = runner.limits.get(self.current, DEFAULT_TEST_TIMEOUT_S) + OUTER_GRACE_S
                if now - self.current_started > limit:
                    self.ended = Ending.TEST_TIMEOUT
            elif now - self.last_activity > runner.startup_timeout_s:
                self.ended = Ending.IDLE_TIMEOUT
            if self.ended is not Ending.EXITED:
                sandbox.kill(self.process, self.cgroup)
                self.returncode = self.process.returncode
                return
            time.sleep(POLL_INTERVAL_S)

    def drain(self, runner: Runner) -> None:
        """Read the events (and output) sent since the last call; reject a forged report."""
        self.output.read()
        if self.ended is Ending.REJECTED:
            return
        try:
            for event in self.channel.read():
                self.protocol.check(event)
                self._apply(event, runner)
            if self.channel.rejected is not None:
                raise self.channel.rejected
        except Rejected as error:
            self.ended, self.rejected = Ending.REJECTED, str(error)

    def _apply(self, event: dict, runner: Runner) -> None:
        self.last_activity = time.monotonic()
        kind = event.get("event")
        nodeid = str(event.get("nodeid", ""))
        if kind == "start":
            self.current, self.current_started = nodeid, time.monotonic()
        elif kind == "finish":
            status = Status.from_event(str(event.get("outcome", "error")))
            duration = event.get("duration")
            duration = float(duration) if isinstance(duration, int | float) else None
            feedback = one_line(str(event.get("feedback", "")), 400)
            self.finished[nodeid] = TestOutcome(status, feedback, duration)
            if self.current == nodeid:
                self.current = None
                if self.ended is Ending.TEST_TIMEOUT:  # it finished just in time after all
                    self.ended = Ending.EXITED
        elif kind == "collected":
            self.collected = [str(n) for n in event.get("nodeids", [])]
        elif kind == "configured":
            self.configured = event
        runner.on_event(event)


def module_name(source: str) -> str:
    """ "src/dlcc/numpy_nn/layers.py" -> "dlcc.numpy_nn.layers"."""
    parts = list(Path(source).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _under(nodeid: str, path: str) -> bool:
    """Whether test `nodeid` lives under the collector `path` (a file or folder node id)."""
    if not path:
        return True
    return nodeid.startswith(path + "::") or nodeid.startswith(path.rstrip("/") + "/")


def _tail(log: str, lines: int = 3) -> str:
    """The last few non-blank lines of a process's output, on one line."""
    kept = [line.strip() for line in log.splitlines() if line.strip()][-lines:]
    return one_line(" | ".join(kept), 400) or "(no output)"
