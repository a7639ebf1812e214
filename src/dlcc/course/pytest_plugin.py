"""The grader's pytest plugin: runs inside the grading subprocess and reports each test.

Standard library and pytest only: the grader copies this file into its work folder and loads it
with ``-p dlcc_grade_plugin``. It reads its settings from the environment:

- ``DLCC_GRADE_EVENTS``: the JSON Lines file it appends events to, one flushed line each;
- ``DLCC_GRADE_SELECT``: a file of node ids, one a line: only these run, in collection order;
- ``DLCC_GRADE_SOURCES``: the learner's source files (``os.pathsep``-separated), which
  feedback points into ("TypeError: ... (in layers.py:42)");
- ``DLCC_GRADE_PACKAGE``: the folder the ``dlcc`` under test must be imported from.

Events (each a JSON object with an ``event`` key):
``configured`` (with ``dlcc``: where ``dlcc`` was imported from), ``collect_error``
(``nodeid``, ``message``), ``collected`` (``nodeids``: every test collected, before selection),
``start`` (``nodeid``), ``finish`` (``nodeid``, ``outcome``: passed/failed/error/skipped,
``feedback``: one line, ``duration`` in seconds), ``session_finish`` (``exitstatus``).

The parent watches ``start``/``finish`` to enforce time limits and to notice a process that dies
mid-test. This plugin runs in the same process as the code it grades, so it reports honestly on
code that fails, hangs or crashes, but it is no defence against code written to forge results.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

import pytest

FEEDBACK_LIMIT = 300
_state: dict = {"results": {}, "started": {}}


def _emit(event: str, **fields) -> None:
    path = os.environ.get("DLCC_GRADE_EVENTS")
    if not path:
        return
    line = json.dumps({"event": event, **fields}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


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


def pytest_configure(config) -> None:
    try:
        import dlcc

        location = str(Path(dlcc.__file__).resolve())
    except Exception as error:  # reported, then the generated conftest stops the run
        location = f"cannot import dlcc: {type(error).__name__}: {error}"
    _emit("configured", dlcc=location, pid=os.getpid())


def pytest_collectreport(report) -> None:
    if report.failed:
        _emit("collect_error", nodeid=report.nodeid, message=_collect_message(report))


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


def pytest_collection_modifyitems(session, config, items) -> None:
    _emit("collected", nodeids=[item.nodeid for item in items])
    select_path = os.environ.get("DLCC_GRADE_SELECT")
    if not select_path:
        return
    wanted = set(Path(select_path).read_text(encoding="utf-8").splitlines())
    kept = [item for item in items if item.nodeid in wanted]
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


def pytest_runtest_logstart(nodeid, location) -> None:
    _state["started"][nodeid] = time.monotonic()
    _state["results"][nodeid] = ("passed", "passed")
    _emit("start", nodeid=nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    try:
        report = outcome.get_result()
        _record(item.nodeid, call, report)
    except Exception as error:  # never let feedback-making break the run
        _state["results"][item.nodeid] = ("error", f"grader plugin error: {error!r}")


def _record(nodeid: str, call, report) -> None:
    previous, _ = _state["results"].get(nodeid, ("passed", ""))
    if previous != "passed":
        return  # the first problem is the one to report
    if hasattr(report, "wasxfail"):
        reason = report.wasxfail or "expected to fail"
        _state["results"][nodeid] = ("skipped", _shorten(f"xfail: {reason}"))
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        reason = reason.removeprefix("Skipped: ")
        _state["results"][nodeid] = ("skipped", _shorten(f"skipped: {reason}"))
        return
    if not report.failed:
        return
    error = call.excinfo.value if call.excinfo is not None else None
    feedback = feedback_for(error) if error is not None else _first_line(report.longreprtext)
    if call.when == "call":
        _state["results"][nodeid] = ("failed", _shorten(feedback))
    else:
        _state["results"][nodeid] = ("error", _shorten(f"error in test {call.when}: {feedback}"))


def pytest_runtest_logfinish(nodeid, location) -> None:
    outcome, feedback = _state["results"].get(nodeid, ("error", "no result recorded"))
    duration = time.monotonic() - _state["started"].get(nodeid, time.monotonic())
    _emit("finish", nodeid=nodeid, outcome=outcome, feedback=feedback, duration=duration)


def pytest_sessionfinish(session, exitstatus) -> None:
    _emit("session_finish", exitstatus=int(exitstatus))
