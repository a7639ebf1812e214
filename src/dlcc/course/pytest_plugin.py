"""The grader's pytest plugin: runs inside the grading subprocess and reports each test.

Standard library and pytest only: the grader copies this file into its work folder and loads it
with ``-p dlcc_grade_plugin``. It reads its settings from the environment:

- ``DLCC_GRADE_EVENTS_FD``: the pipe it writes events to, one line each;
- ``DLCC_GRADE_KEY_FD``: a pipe holding this run's secret key, which it reads, and closes, when
  it is imported (before any graded code is), and removes both variables from the environment;
- ``DLCC_GRADE_SELECT``: a file of node ids, one a line: only these run, in collection order;
- ``DLCC_GRADE_SOURCES``: the learner's source files (``os.pathsep``-separated), which
  feedback points into ("TypeError: ... (in layers.py:42)");
- ``DLCC_GRADE_PACKAGE``: the folder the ``dlcc`` under test must be imported from;
- ``DLCC_GRADE_LEARNER``: the spec of the learner's process (`dlcc.course.learner`): when set,
  the learner's modules are stand-ins here and their code runs in that process, one test at a
  time under the test's limit from ``DLCC_GRADE_LIMITS`` (a JSON file: node id -> seconds).

Each event is one line: the hex HMAC-SHA256 of the JSON text under the run's key, a space, and
a JSON object with an ``event`` key and ``seq`` (0, 1, 2, ... in order). Events:
``configured`` (with ``dlcc``: where ``dlcc`` was imported from), ``collect_error``
(``nodeid``, ``message``), ``collected`` (``nodeids``: every test collected, before selection),
``start`` (``nodeid``), ``finish`` (``nodeid``, ``outcome``: passed/failed/error/skipped,
``feedback``: one line, ``duration`` in seconds), ``session_finish`` (``exitstatus``).

The parent watches ``start``/``finish`` to enforce time limits and to notice a process that dies
mid-test, and accepts only authenticated events, in sequence, one start/finish pair per selected
test in collection order (`dlcc.course.channel`). With ``DLCC_GRADE_LEARNER`` this process runs
no learner code at all: the learner's code runs in its own process and reaches this one only as
requests on objects the tests hand it (`dlcc.course.remote`), so it cannot read the key, the
hooks, the tests or the expected values. A test counts as passed only when its call phase is
reported passed; a test that is skipped or xfailed, or whose learner code calls pytest.skip(),
scores nothing and says why. A learner process that dies or runs over the test's limit costs
that test ("crashed", "timed out"), and the next test gets a fresh one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import traceback
from pathlib import Path

import pytest

FEEDBACK_LIMIT = 300
SKIPPED_BY_CODE = "skipped by the submission's code"


def _take_channel() -> tuple[int | None, bytes]:
    """The events pipe and this run's key, taken out of the environment (the key's pipe closed)."""
    channel = os.environ.pop("DLCC_GRADE_EVENTS_FD", "")
    key_fd = os.environ.pop("DLCC_GRADE_KEY_FD", "")
    key = b""
    if key_fd.isdigit():
        with os.fdopen(int(key_fd), "rb") as handle:
            key = handle.read(256)
    if not channel.isdigit():
        return None, key
    os.set_inheritable(int(channel), False)
    return int(channel), key


def _make_emitter(channel: int | None, key: bytes):
    counter = [0]

    def emit(event: str, **fields) -> None:
        if channel is None:
            return
        text = json.dumps({"event": event, "seq": counter[0], **fields}, ensure_ascii=False)
        counter[0] += 1
        data = text.encode("utf-8")
        mac = hmac.new(key, data, hashlib.sha256).hexdigest().encode()
        line = mac + b" " + data + b"\n"
        while line:
            line = line[os.write(channel, line) :]

    return emit


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _shorten(text: str) -> str:
    return text if len(text) <= FEEDBACK_LIMIT else text[: FEEDBACK_LIMIT - 3] + "..."


def _learner_sources() -> set[str]:
    value = os.environ.get("DLCC_GRADE_SOURCES", "")
    return {os.path.realpath(path) for path in value.split(os.pathsep) if path}


def _where(error: BaseException) -> str:
    """ " (in layers.py:42)": the deepest frame in a learner's file, else in the package."""
    where = getattr(error, "where", None)  # an error re-raised from the learner's process
    if isinstance(where, str) and where:
        return where
    frames = traceback.extract_tb(error.__traceback__)
    sources = _learner_sources()
    package = os.path.realpath(os.environ.get("DLCC_GRADE_PACKAGE", "")) + os.sep
    for wanted in (
        lambda name: name in sources,
        lambda name: package != os.sep and name.startswith(package),
    ):
        for frame in reversed(frames):
            name = os.path.realpath(frame.filename)
            if wanted(name):
                return f" (in {os.path.basename(name)}:{frame.lineno})"
    return ""


def feedback_for(error: BaseException) -> str:
    """One specific line about why a test failed."""
    where = getattr(error, "where", None)
    if isinstance(where, str) and type(error).__name__ in ("LearnerError", "LearnerStopped"):
        return f"{_first_line(error)}{where}"
    if isinstance(error, NotImplementedError):
        return f"not implemented yet: {_first_line(error) or 'NotImplementedError'}"
    if isinstance(error, AssertionError):
        return _first_line(error) or f"assertion failed{_where(error)}"
    if isinstance(error, pytest.fail.Exception):
        return _first_line(error.msg) or "failed"
    if isinstance(error, SystemExit):
        return f"the code called sys.exit({error.code!r}){_where(error)}"
    if isinstance(error, MemoryError):
        return f"MemoryError: out of memory (the grader caps each process){_where(error)}"
    if isinstance(error, RecursionError):
        return f"RecursionError: maximum recursion depth exceeded{_where(error)}"
    message = _first_line(error)
    name = type(error).__name__
    return f"{name}: {message}{_where(error)}" if message else f"{name}{_where(error)}"


def _make_hooks(emit):
    """The reporting hooks, in a closure: replacing a module attribute changes none of them."""
    results: dict = {}
    started: dict = {}
    starting_errors: dict = {}  # node id -> why the learner's process could not start for it
    limits_path = os.environ.get("DLCC_GRADE_LIMITS", "")
    limits = json.loads(Path(limits_path).read_text(encoding="utf-8")) if limits_path else {}

    def record(nodeid: str, call, report) -> None:
        previous, _ = results.get(nodeid, ("passed", ""))
        if previous != "passed":
            return  # the first problem is the one to report
        if hasattr(report, "wasxfail"):
            reason = report.wasxfail or "expected to fail"
            results[nodeid] = ("skipped", _shorten(f"{SKIPPED_BY_CODE}: xfail: {reason}"))
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            reason = reason.removeprefix("Skipped: ")
            results[nodeid] = ("skipped", _shorten(f"{SKIPPED_BY_CODE}: {reason}"))
            return
        if not report.failed:
            if call.when == "call":
                results[nodeid] = ("passed", "passed")
            elif nodeid not in results:
                results[nodeid] = ("passed", "")  # so far; only a passed call counts
            return
        error = call.excinfo.value if call.excinfo is not None else None
        feedback = feedback_for(error) if error is not None else _first_line(report.longreprtext)
        if type(error).__name__ == "LearnerStopped":
            status = "timed_out" if getattr(error, "timed_out", False) else "crashed"
            results[nodeid] = (status, _shorten(feedback))
            return
        if call.when == "call":
            results[nodeid] = ("failed", _shorten(feedback))
        else:
            results[nodeid] = ("error", _shorten(f"error in test {call.when}: {feedback}"))

    class Hooks:
        @staticmethod
        def emit_configured(location: str) -> None:
            emit("configured", dlcc=location, pid=os.getpid())

        @staticmethod
        def pytest_collectreport(report) -> None:
            if report.failed:
                emit("collect_error", nodeid=report.nodeid, message=_collect_message(report))
            elif report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                reason = str(reason).removeprefix("Skipped: ")
                message = _shorten(f"{SKIPPED_BY_CODE}: {reason}")
                emit("collect_error", nodeid=report.nodeid, message=message, skipped=True)

        @staticmethod
        def pytest_collection_modifyitems(session, config, items) -> None:
            emit("collected", nodeids=[item.nodeid for item in items])
            select_path = os.environ.get("DLCC_GRADE_SELECT")
            if not select_path:
                return
            wanted = set(Path(select_path).read_text(encoding="utf-8").splitlines())
            kept = [item for item in items if item.nodeid in wanted]
            dropped = [item for item in items if item.nodeid not in wanted]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = kept

        @staticmethod
        def pytest_runtest_logstart(nodeid, location) -> None:
            started[nodeid] = time.monotonic()
            emit("start", nodeid=nodeid)

        @staticmethod
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_protocol(item, nextitem):
            learner = _learner[0] if _learner else None
            if learner is not None:
                try:
                    learner.begin_test(float(limits.get(item.nodeid, DEFAULT_LIMIT_S)))
                except Exception as error:  # reported as the test's outcome by its setup
                    starting_errors[item.nodeid] = error
            yield
            if learner is not None:
                learner.end_test()

        @staticmethod
        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_setup(item) -> None:
            error = starting_errors.pop(item.nodeid, None)
            if error is not None:
                raise error

        @staticmethod
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            try:
                record(item.nodeid, call, outcome.get_result())
            except Exception as error:  # never let feedback-making break the run
                results[item.nodeid] = ("error", f"grader plugin error: {error!r}")

        @staticmethod
        def pytest_runtest_logfinish(nodeid, location) -> None:
            outcome, feedback = results.get(nodeid, ("error", "no result recorded"))
            if outcome == "passed" and feedback != "passed":
                outcome, feedback = "error", "no result recorded for the test's call"
            duration = time.monotonic() - started.get(nodeid, time.monotonic())
            emit("finish", nodeid=nodeid, outcome=outcome, feedback=feedback, duration=duration)

        @staticmethod
        def pytest_sessionfinish(session, exitstatus) -> None:
            emit("session_finish", exitstatus=int(exitstatus))

    return Hooks()


DEFAULT_LIMIT_S = 60.0
_learner: list = []  # the learner's process, once started


def _install_standins() -> list:
    """With ``DLCC_GRADE_LEARNER``: the learner's modules as stand-ins, before pytest imports
    any conftest or test (this module is imported first, by ``-p``); started at configure."""
    spec = os.environ.pop("DLCC_GRADE_LEARNER", "")
    if not spec:
        return []
    import sys

    from dlcc_grade import learner, remote  # the grader's runtime, in the harness

    sys.modules["dlcc.course.remote"] = remote  # what the tests' helpers import
    return [learner.install(spec)]


try:
    _standins = _install_standins()
    _standins_error = ""
except Exception as _error:  # reported at configure, where the parent stops with it
    _standins, _standins_error = [], f"{type(_error).__name__}: {_error}"
_pending = [_make_hooks(_make_emitter(*_take_channel()))]  # taken by pytest_configure


def pytest_configure(config) -> None:
    if not _pending:
        return
    hooks = _pending.pop()
    config.pluginmanager.register(hooks, "dlcc-grade-reporter")
    try:
        import dlcc

        location = str(Path(dlcc.__file__).resolve())
    except Exception as error:  # reported, then the generated conftest stops the run
        location = f"cannot import dlcc: {type(error).__name__}: {error}"
    if _standins_error:
        location = f"cannot start the learner's process: {_standins_error}"
    if _standins:
        try:
            _standins[0].start()
            _learner.append(_standins[0])
        except Exception as error:  # a grader problem: the parent stops with this message
            location = f"cannot start the learner's process: {type(error).__name__}: {error}"
    hooks.emit_configured(location)


def pytest_unconfigure(config) -> None:
    for learner in _learner:
        learner.stop()


def _collect_message(report) -> str:
    text = str(report.longrepr)
    error_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    error_lines = [line for line in error_lines if line]
    message = error_lines[-1] if error_lines else _first_line(text.splitlines()[-1:] or [""])
    sources = {os.path.basename(path) for path in _learner_sources()}
    for line in reversed(text.splitlines()):
        stripped = line.lstrip("E").strip()
        if stripped.startswith('File "') and ", line " in stripped:
            file_name = stripped.split('"')[1]
            if os.path.basename(file_name) in sources:
                line_number = stripped.split(", line ")[1].split(",")[0].strip()
                message += f" (in {os.path.basename(file_name)}:{line_number})"
                break
    return _shorten(message or "could not be collected")
