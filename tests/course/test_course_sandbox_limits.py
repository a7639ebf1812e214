"""The grader's limits and its defences against a hostile submission, on the fake course root.

Each test adds one attack to a1's `add` (or to the module's import) and checks that it costs
only what it should: the attack's own test, or the whole score where the attack forges one.
"""

from __future__ import annotations

import os
import resource
import textwrap
from pathlib import Path

import pytest
from course_fake_root import OPS, SHAPES, catalogue_text, make_fake_root

import dlcc
from dlcc.course import sandbox
from dlcc.course.fences import strip_solutions
from dlcc.course.grade import grade
from dlcc.course.outcome import Status

STARTUP_S = 30.0
STUBS = strip_solutions(OPS, "ops.py", "a1")  # the release's ops.py: every function a stub


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake_root(tmp_path_factory.mktemp("course") / "root")


@pytest.fixture(scope="module")
def isolation():
    return sandbox.detect_isolation()


def submit(folder: Path, ops: str, shapes: str = SHAPES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ops.py").write_text(ops)
    (folder / "shapes.py").write_text(shapes)
    return folder


def with_add(body: str, base: str = OPS) -> str:
    """`base` (the reference by default) with `add` redefined by `body`, added at the end."""
    return base + "\n\n" + textwrap.dedent(body)


def outcomes(report) -> dict[str, tuple[Status, str]]:
    return {r.test.function: (r.outcome.status, r.outcome.feedback) for r in report.results}


def require_process_limit(isolation) -> None:
    if not isolation.cgroups and not (isolation.level == "full" and os.geteuid() != 0):
        pytest.skip(f"no process limit can be set here: {isolation.limits}")


def test_the_report_says_which_limits_were_set(root, isolation):
    report = grade(root, "a1", startup_timeout_s=STARTUP_S)
    assert report.score == report.max_score == 14
    assert isolation.limits and isolation.limits in report.table()
    if isolation.cgroups:
        assert "(a pids cgroup)" in isolation.limits
        assert "for the whole process tree (a memory cgroup)" in isolation.limits
    else:
        assert "per process only (RLIMIT_AS)" in isolation.limits
    if isolation.level == "full":
        assert "MB tmpfs for scratch, home and tmp" in isolation.limits


def test_a_fork_bomb_stops_at_the_process_limit(root, tmp_path, isolation, monkeypatch):
    require_process_limit(isolation)
    monkeypatch.setenv("DLCC_GRADE_PROCESSES", "64")
    # Bounded even without the limit: at most 200 children, each killed by the bomb itself.
    bomb = with_add(
        """\
        def add(a, b):
            import os, signal, time

            children = []
            try:
                for _ in range(200):
                    pid = os.fork()
                    if pid == 0:
                        try:
                            time.sleep(30)
                        finally:
                            os._exit(0)
                    children.append(pid)
            except OSError as error:
                failure = f"fork failed after {len(children)}: {error.strerror}"
            else:
                failure = "no limit"
            finally:
                for pid in children:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            raise RuntimeError(failure)
        """
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", bomb), startup_timeout_s=STARTUP_S)
    got = outcomes(report)
    status, feedback = got["test_add"]
    assert status is Status.FAILED and feedback.startswith("RuntimeError: fork failed after ")
    assert int(feedback.split("after ")[1].split(":")[0]) < 64
    assert report.score == 14 - 1  # only the bomb's own test lost its point


def test_memory_is_capped_for_the_whole_process_tree(tmp_path, isolation):
    if not isolation.cgroups:
        pytest.skip(f"no memory cgroup here: {isolation.limits}")
    fresh = make_fake_root(
        tmp_path / "root",
        catalogue_text()
        .replace("memory_mb = 2048", "memory_mb = 600")
        .replace("timeout_s = 3\n", "timeout_s = 20\n"),
    )
    # Four children of 250 MB each: under the per-process cap, over the tree's 600 MB.
    greedy = with_add(
        """\
        def add(a, b):
            import os, time

            children = []
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    try:
                        block = b"x" * (250 * 2**20)
                        time.sleep(1)
                        del block
                    finally:
                        os._exit(0)
                children.append(pid)
            statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
            if any(statuses):
                raise RuntimeError(f"children stopped: {statuses}")
            return a + b
        """
    )
    submission = submit(tmp_path / "s", greedy)
    report = grade(fresh, "a1", submission=submission, startup_timeout_s=STARTUP_S)
    got = outcomes(report)
    assert got["test_add"][0] is not Status.PASSED, got["test_add"]
    feedback = got["test_add"][1]
    # The kernel stops the largest processes of the tree: some children, or the tests' process.
    assert ("children stopped: [" in feedback and "-9" in feedback) or (
        "using over 600 MB (all its processes together)" in feedback
    ), feedback
    assert report.score == 14 - 1


def test_filling_the_disk_fails_with_enospc_in_that_test_only(
    root, tmp_path, isolation, monkeypatch
):
    if isolation.level != "full":
        pytest.skip(f"no size-limited scratch folder at level {isolation.level}")
    monkeypatch.setenv("DLCC_GRADE_SCRATCH_MB", "16")
    filler = with_add(
        """\
        def add(a, b):
            import os

            written = 0
            try:
                with open(os.path.join(os.environ["TMPDIR"], "fill.bin"), "wb") as handle:
                    while written < 200 * 2**20:  # stops by itself if there is no quota
                        handle.write(b"x" * 2**20)
                        handle.flush()
                        written += 2**20
            except OSError as error:
                os.remove(os.path.join(os.environ["TMPDIR"], "fill.bin"))
                raise OSError(f"{error.strerror} after {written // 2**20} MB") from None
            return a + b
        """
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", filler))
    status, feedback = outcomes(report)["test_add"]
    assert status is Status.FAILED and "No space left on device after" in feedback, feedback
    assert int(feedback.split("after ")[1].split(" MB")[0]) <= 16
    assert report.score == 14 - 1


def test_writing_by_a_relative_path_works_as_it_does_locally(root, tmp_path):
    saver = with_add(
        """\
        def add(a, b):
            with open("debug.txt", "w") as handle:
                handle.write(f"add({a}, {b})")
            with open("debug.txt") as handle:
                assert handle.read() == f"add({a}, {b})"
            return a + b
        """
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", saver))
    assert outcomes(report)["test_add"] == (Status.PASSED, "passed")
    assert report.score == 14


def channel_fd_code() -> str:
    """Code that finds the events pipe as a submission could: in /proc/self/environ, which
    keeps the process's first environment after the plugin removed the variable."""
    return textwrap.dedent(
        """\
        def _channel():
            import os

            with open("/proc/self/environ", "rb") as handle:
                for entry in handle.read().split(b"\\0"):
                    name, _, value = entry.partition(b"=")
                    if name in (b"DLCC_GRADE_EVENTS_FD", b"DLCC_GRADE_EVENTS"):
                        return name, value.decode()
            raise RuntimeError("no events channel found")
        """
    )


def test_a_huge_event_line_is_cut_and_costs_its_test(root, tmp_path):
    flood = with_add(
        channel_fd_code()
        + textwrap.dedent(
            """\

        def add(a, b):
            import os

            name, value = _channel()
            chunk = b"x" * 2**20
            if name == b"DLCC_GRADE_EVENTS_FD":
                for _ in range(100):  # 100 MB, no newline
                    os.write(int(value), chunk)
            else:  # the old grader's events file
                with open(value, "ab") as handle:
                    for _ in range(100):
                        handle.write(chunk)
            return a + b
        """
        )
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = grade(root, "a1", submission=submit(tmp_path / "s", flood))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    status, feedback = outcomes(report)["test_add"]
    # The learner's process has no events channel to flood (the old grader's was its own).
    assert status is Status.FAILED
    assert feedback.startswith("RuntimeError: no events channel found"), feedback
    assert report.score == 14 - 1
    assert grown_mb < 50, f"the grader's memory grew by {grown_mb:.0f} MB"


def test_forged_passed_events_then_exit_score_zero(root, tmp_path):
    forger = with_add(
        channel_fd_code()
        + textwrap.dedent(
            """\

        def add(a, b):
            import json, os

            names = ["add", "relu", "scale", "mean", "square", "negate", "double", "clip",
                     "halve", "total", "cube"]
            nodeids = [f"tests/course/a1/test_toy_ops.py::test_{n}" for n in names]
            nodeids.append("tests/course/a1/test_toy_shapes.py::test_area")
            lines = [{"event": "finish", "nodeid": nodeids[0], "outcome": "passed",
                      "feedback": "passed", "duration": 0.1}]
            for nodeid in nodeids[1:]:
                lines.append({"event": "start", "nodeid": nodeid})
                lines.append({"event": "finish", "nodeid": nodeid, "outcome": "passed",
                              "feedback": "passed", "duration": 0.1})
            lines.append({"event": "session_finish", "exitstatus": 0})
            text = "".join(json.dumps(line) + "\\n" for line in lines)
            forged = "".join("0" * 64 + " " + json.dumps(line) + "\\n" for line in lines)
            name, value = _channel()
            if name == b"DLCC_GRADE_EVENTS_FD":
                os.write(int(value), (text + forged).encode())
            else:
                with open(value, "a") as handle:
                    handle.write(text)
            os._exit(0)
        """
        ),
        base=STUBS,
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", forger, shapes="\n"))
    assert report.score == 0, outcomes(report)
    # There is no channel in the learner's process to forge events on.
    assert outcomes(report)["test_add"][1].startswith("RuntimeError: no events channel found")


def test_replacing_the_plugins_functions_scores_zero(root, tmp_path):
    patcher = (
        textwrap.dedent(
            """\
            import sys

            _plugin = sys.modules.get("dlcc_grade_plugin")
            if _plugin is not None:  # the old plugin's default outcome was "passed"
                _plugin._record = lambda *args, **kwargs: None
                _plugin.feedback_for = lambda error: "passed"
            """
        )
        + STUBS
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", patcher, shapes="\n"))
    assert report.score == 0, outcomes(report)
    assert not any(result.outcome.passed for result in report.results)


def test_rewriting_the_plugins_state_through_its_memory_scores_zero(root, tmp_path):
    # On the in-process grader this forged every result (a strict xfail recorded it): the
    # plugin's hooks and results are no longer in the learner's process at all.
    reader = (
        textwrap.dedent(
            """\
            import gc


            class _AlwaysPassed(dict):
                def get(self, key, default=None):
                    return ("passed", "passed")


            for _hooks in [o for o in gc.get_objects() if type(o).__name__ == "Hooks"]:
                _finish = _hooks.pytest_runtest_logfinish
                for _name, _cell in zip(_finish.__code__.co_freevars, _finish.__closure__):
                    if _name == "results":
                        _cell.cell_contents = _AlwaysPassed()
            """
        )
        + STUBS
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", reader))
    assert report.score <= 3  # at most area, which this submission does implement


def test_skips_by_the_submissions_code_score_zero_and_say_why(root, tmp_path):
    skipper = with_add(
        """\
        import pytest


        def add(a, b):
            pytest.skip("not today")


        def relu(values):
            pytest.xfail("later")
        """
    )
    shapes = 'import pytest\n\npytest.skip("no shapes", allow_module_level=True)\n' + SHAPES
    report = grade(root, "a1", submission=submit(tmp_path / "s", skipper, shapes))
    got = outcomes(report)
    skipped = "the submission's code raised pytest.skip()"
    assert got["test_add"][0] is Status.FAILED
    assert got["test_add"][1].startswith(f"{skipped}: not today"), got["test_add"]
    assert got["test_relu"][0] is Status.FAILED
    assert got["test_relu"][1].startswith("the submission's code raised pytest.xfail(): later")
    assert got["test_area"][0] is Status.FAILED
    assert got["test_area"][1].startswith(f"{skipped}: no shapes"), got["test_area"]
    assert report.score == 14 - 1 - 1 - 3


def test_a_submission_that_only_skips_scores_zero(root, tmp_path):
    skips = STUBS.replace("raise NotImplementedError", 'import pytest; pytest.skip("x"); raise ')
    report = grade(root, "a1", submission=submit(tmp_path / "s", skips, shapes="\n"))
    assert report.score == 0
    skipped = [r for r in report.results if "raised pytest.skip()" in r.outcome.feedback]
    assert len(skipped) == 11


def test_the_reference_is_not_readable_from_the_sandbox(root, tmp_path, isolation):
    if isolation.level != "full":
        pytest.skip(f"no mount namespace at level {isolation.level}")
    grader_source = Path(dlcc.__file__).resolve().parent / "course" / "grade.py"
    reader = with_add(
        f"""\
        def add(a, b):
            import os, sys

            candidates = [{str(root / "src/dlcc/toy/ops.py")!r}, {str(grader_source)!r}]
            candidates += [os.path.join(p, "dlcc", "toy", "ops.py") for p in sys.path if p]
            candidates += [os.path.join(p, "dlcc", "course", "grade.py") for p in sys.path if p]
            own = os.path.realpath(__file__)
            read = []
            for path in candidates:
                if os.path.realpath(path) == own:
                    continue
                try:
                    with open(path) as handle:
                        handle.read()
                except OSError:
                    continue
                read.append(path)
            if read:
                raise RuntimeError(f"read {{read}}")
            return a + b
        """,
        base=STUBS,
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", reader), hidden=True)
    assert outcomes(report)["test_add"] == (Status.PASSED, "passed")


def test_hidden_tests_are_not_readable_with_hidden(root, tmp_path, isolation):
    if isolation.level != "full":
        pytest.skip(f"no mount namespace at level {isolation.level}")
    reader = with_add(
        """\
        def add(a, b):
            import glob, os, sys

            folders = {os.path.dirname(os.path.realpath(__file__))}
            folders |= {os.path.realpath(p) for p in sys.path if p}
            tops = set()
            for folder in folders:  # every folder above where the code is, and above sys.path
                while folder not in ("/", ""):
                    tops.add(folder)
                    folder = os.path.dirname(folder)
            for top in tops:
                for below in ("graded/tests/course/a1", "tests/course/a1", "*/tests/course/a1"):
                    if glob.glob(os.path.join(top, below, "test_toy_hidden.py")):
                        raise RuntimeError("read the hidden tests")
            return a + b
        """
    )
    report = grade(root, "a1", submission=submit(tmp_path / "s", reader), hidden=True)
    assert outcomes(report)["test_add"] == (Status.PASSED, "passed")


def test_fooling_the_oracle_earns_nothing(root, tmp_path):
    # The tests compare with `==` here (NumPy in the real assignments). On the in-process grader
    # an answer whose __eq__ always agrees, or a patched numpy.testing, scored full marks; now
    # the learner's objects reach the tests only as handles, which compare by identity, and the
    # learner's numpy is not the tests'.
    fooler = textwrap.dedent(
        """\
            import numpy as np
            import numpy.testing


            class _Agrees:
                def __eq__(self, other):
                    return True

                __hash__ = object.__hash__


            np.abs = lambda values, *args, **kwargs: np.zeros_like(values)
            numpy.testing.assert_allclose = lambda *args, **kwargs: None
            """
    ) + STUBS.replace("raise NotImplementedError", "return _Agrees(); raise ")
    report = grade(root, "a1", submission=submit(tmp_path / "s", fooler, shapes="\n"))
    assert report.score == 0, outcomes(report)
    assert outcomes(report)["test_add"][0] is Status.FAILED
