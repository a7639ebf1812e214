"""Grading on the fake course root: scores, feedback, results.json, and hostile submissions."""

from __future__ import annotations

import json
import socket
import textwrap
import uuid
from pathlib import Path

import pytest
from course_fake_root import OPS, SHAPES, make_fake_root, tree_bytes

import dlcc
from dlcc.cli import main
from dlcc.course import sandbox
from dlcc.course.errors import CourseError
from dlcc.course.fences import strip_solutions
from dlcc.course.grade import grade
from dlcc.course.outcome import SourceStatus, Status
from dlcc.course.release import release
from dlcc.course.report import validate_results
from dlcc.course.workdir import find_submitted

STARTUP_S = 30.0  # generous: only the import-hang test waits for it, with its own value


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake_root(tmp_path_factory.mktemp("course") / "root")


def outcomes(report) -> dict[str, tuple[Status, str]]:
    return {r.test.function: (r.outcome.status, r.outcome.feedback) for r in report.results}


def test_reference_scores_full_marks_and_writes_valid_results(root, tmp_path):
    results_path = tmp_path / "out" / "results.json"
    report = grade(root, "a1", hidden=True, json_path=results_path, startup_timeout_s=STARTUP_S)
    assert report.score == report.max_score == 20
    assert {r.outcome.status for r in report.results} == {Status.PASSED}
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert data["score"] == 20.0 and data["max_score"] == 20.0
    assert len(data["tests"]) == 14
    hidden = [t for t in data["tests"] if t["visibility"] == "after_published"]
    assert sorted(t["name"] for t in hidden) == [
        "Part 1: basics | test_toy_hidden.py::test_add_large",
        "Part 1: basics | test_toy_ops.py::test_relu_more_cases",
    ]
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}
    assert f"the package in {root / 'src'} as it is (no --submission)" in data["output"]
    table = report.table()
    assert "Total: 20/20 (100.0%)" in table
    assert "  subtotal" in table and "Part 3: shapes" in table
    assert [p.name for p in results_path.parent.iterdir()] == ["results.json"]


def test_fresh_release_scores_zero_with_a_full_report(root, tmp_path, capsys):
    released = release(root, "a1", tmp_path / "release")
    results_path = tmp_path / "results.json"
    argv = ["course", "grade", "a1", "--root", str(released), "--submission", str(released)]
    assert main([*argv, "--json", str(results_path)]) == 0
    printed = capsys.readouterr().out
    assert "Total: 0/14 (0.0%); hidden tests (6 points) are graded after you submit" in printed
    assert "not implemented yet: a1: relu: max(v, 0) for each value" in printed
    data = json.loads(results_path.read_text())
    validate_results(data)
    assert data["score"] == 0 and data["max_score"] == 14 and len(data["tests"]) == 12
    assert all(t["output"].startswith("not implemented yet: a1: ") for t in data["tests"])
    assert all(t["visibility"] == "visible" for t in data["tests"])


def test_hidden_tests_run_only_with_hidden_flag(root, tmp_path):
    submission = tmp_path / "flat"
    submission.mkdir()
    # Only `add` done, uploaded flat (Gradescope style); shapes.py not submitted at all.
    (submission / "ops.py").write_text(
        strip_solutions(OPS, "ops.py", "a1", keep=lambda region: region.function == "add")
    )
    public = grade(root, "a1", submission=submission, startup_timeout_s=STARTUP_S)
    assert public.score == 1 and public.max_score == 14 and len(public.results) == 12
    assert "hidden tests (6 points) not run, pass --hidden" in public.table()
    with_hidden = grade(root, "a1", submission=submission, hidden=True, startup_timeout_s=STARTUP_S)
    assert with_hidden.score == 1 + 4 and with_hidden.max_score == 20
    assert outcomes(with_hidden)["test_add_large"][0] is Status.PASSED
    origins = {o.source: (o.status, o.detail) for o in with_hidden.sources}
    assert origins["src/dlcc/toy/ops.py"] == (SourceStatus.SUBMITTED, "ops.py")
    assert origins["src/dlcc/toy/shapes.py"][0] is SourceStatus.NOT_SUBMITTED
    assert outcomes(with_hidden)["test_area"] == (
        Status.FAILED,
        "not implemented yet: a1: area = width * height",
    )


def hostile_ops(sentinel: Path, escape: Path, reference: Path, port: int) -> str:
    """A submission whose functions misbehave in every way the grader must survive."""
    return textwrap.dedent(
        f"""\
        import os
        import socket
        import sys


        def add(a, b):
            return a + b


        def relu(values):
            while True:
                pass


        class Scale:
            def __init__(self, factor):
                self.factor = factor

            def forward(self, x):
                os._exit(3)


        def mean(values):
            sys.exit(0)


        def square(x):
            return len(bytearray(50 * 2**30))


        def negate(x):
            for name in os.listdir("."):  # the scratch folder: allowed
                os.remove(name)
            blocked = []
            attempts = [
                lambda: os.remove("../src/dlcc/toy/helpers.py"),  # the package copy
                lambda: open({str(sentinel)!r}, "w").write("overwritten"),
                lambda: open({str(escape)!r}, "w").write("escaped"),
                lambda: open({str(reference)!r}, "a").write("# tampered"),
            ]
            for attempt in attempts:
                try:
                    attempt()
                except OSError as error:
                    blocked.append(error.strerror)
            raise PermissionError(f"blocked {{len(blocked)}}/4: {{sorted(set(blocked))}}")


        def double(x):
            socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
            return 2 * x


        def clip(x, low, high):
            return low.missing_attribute


        def halve(x):
            return x / 2


        def total(values):
            raise NotImplementedError("a1: implement total")


        def cube(x):
            import ctypes

            return ctypes.string_at(0)
        """
    )


def test_hostile_submission_costs_only_its_own_tests(root, tmp_path):
    isolation = sandbox.detect_isolation()
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("original")
    repo_root = Path(dlcc.__file__).resolve().parents[2]
    escape = repo_root / f".dlcc-grade-escape-{uuid.uuid4().hex}"
    before = tree_bytes(root)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    submission = tmp_path / "hostile"
    (submission / "src/dlcc/toy").mkdir(parents=True)
    port = listener.getsockname()[1]
    text = hostile_ops(sentinel, escape, root / "src/dlcc/toy/ops.py", port)
    (submission / "src/dlcc/toy/ops.py").write_text(text)
    (submission / "src/dlcc/toy/shapes.py").write_text(SHAPES)
    try:
        report = grade(root, "a1", submission=submission, startup_timeout_s=STARTUP_S)
        escaped = escape.exists()
    finally:
        escape.unlink(missing_ok=True)
        connected = _accepts(listener)
        listener.close()
    got = outcomes(report)
    # Every test is reported; only the misbehaving ones lose their points.
    assert len(report.results) == 12
    assert got["test_add"] == (Status.PASSED, "passed")
    assert got["test_halve"] == (Status.PASSED, "passed")
    assert got["test_area"] == (Status.PASSED, "passed")
    assert report.score == 1 + 1 + 3
    assert got["test_relu"] == (Status.TIMED_OUT, "timed out after 1.5 s")
    assert got["test_scale"] == (
        Status.CRASHED,
        "the learner's process exited with code 3 while running this test",
    )
    assert got["test_mean"][1].startswith("the code called sys.exit(0) (in ops.py:")
    assert got["test_square"][1].startswith("MemoryError: out of memory")
    clip_line = text.splitlines().index("    return low.missing_attribute") + 1
    assert got["test_clip"][1] == (
        f"AttributeError: 'int' object has no attribute 'missing_attribute' (in ops.py:{clip_line})"
    )
    assert got["test_total"] == (Status.FAILED, "not implemented yet: a1: implement total")
    assert got["test_cube"][0] is Status.CRASHED
    crashed = "the learner's process was killed by signal 11 (SIGSEGV) while running this test"
    assert got["test_cube"][1].startswith(crashed), got["test_cube"]
    assert "Total: 5/14" in report.table()
    # The course root is never touched, whatever the sandbox level.
    assert tree_bytes(root) == before
    if isolation.level == "full":
        # Read-only, or hidden (the course root and the temporary folder are not there at all).
        negate = got["test_negate"][1]
        assert negate.startswith("PermissionError: blocked 4/4: ["), negate
        assert "'Read-only file system'" in negate
        assert set(negate.split("[")[1].split("]")[0].split(", ")) <= {
            "'Read-only file system'",
            "'No such file or directory'",
        }
        assert sentinel.read_text() == "original"
        assert not escaped, "a submission wrote into the repository"
    if isolation.level in ("full", "network"):
        assert got["test_double"][0] is Status.FAILED
        assert "OSError" in got["test_double"][1]
        assert not connected, "a submission reached a socket outside its network namespace"


def _accepts(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except (BlockingIOError, OSError):
        return False
    connection.close()
    return True


def test_sandbox_reaches_full_isolation_here():
    # The course's CI machines support user namespaces; if this fails, the grader still works
    # but with less protection, and the report says so.
    isolation = sandbox.detect_isolation()
    assert isolation.level == "full", isolation.note


def test_submission_that_hangs_at_import(root, tmp_path):
    submission = tmp_path / "hang"
    submission.mkdir()
    (submission / "ops.py").write_text("while True:\n    pass\n")
    report = grade(root, "a1", submission=submission, startup_timeout_s=3)
    assert report.score == 0 and len(report.results) == 12
    for result in report.results:  # the learner's process loads its modules at start-up
        assert result.outcome.status is Status.NOT_RUN
        assert result.outcome.feedback.startswith("not run: importing the tests took over 3 s")


def test_overall_time_limit(root, tmp_path):
    submission = tmp_path / "slow"
    submission.mkdir()
    (submission / "ops.py").write_text(
        OPS.replace("    return a + b\n", "    while True:\n        pass\n")
    )
    report = grade(root, "a1", submission=submission, overall_timeout_s=1.5)
    assert len(report.results) == 12 and report.score == 0
    for result in report.results:
        assert result.outcome.status in (Status.TIMED_OUT, Status.NOT_RUN)
        assert "the grading time limit (1.5 s) ran out" in result.outcome.feedback


def test_submission_with_a_syntax_error(root, tmp_path):
    submission = tmp_path / "syntax"
    submission.mkdir()
    (submission / "ops.py").write_text("def add(a, b):\n    return a +\n")
    (submission / "shapes.py").write_text(SHAPES)
    report = grade(root, "a1", submission=submission, startup_timeout_s=STARTUP_S)
    got = outcomes(report)
    assert got["test_area"] == (Status.PASSED, "passed")
    assert report.score == 3
    assert got["test_add"][0] is Status.FAILED
    assert got["test_add"][1].startswith("SyntaxError: invalid syntax"), got["test_add"]
    assert "ops.py, line 2" in got["test_add"][1], got["test_add"]
    assert any(note.startswith("ops.py does not compile: invalid syntax") for note in report.notes)


def test_without_namespaces_grading_still_works(root, monkeypatch):
    monkeypatch.setenv("DLCC_GRADE_SANDBOX", "none")
    report = grade(root, "a1", startup_timeout_s=STARTUP_S)
    assert report.isolation.level == "none"
    assert report.score == report.max_score == 14
    assert "NOT isolated" in report.table()


def test_bad_sandbox_setting_is_refused(monkeypatch):
    monkeypatch.setenv("DLCC_GRADE_SANDBOX", "jail")
    with pytest.raises(CourseError, match="expected one of full, network, none"):
        sandbox.detect_isolation()


@pytest.mark.parametrize("problem", ["unlisted test", "listed test missing"])
def test_catalogue_must_match_the_collected_tests(tmp_path, problem):
    fresh = make_fake_root(tmp_path / "root")
    if problem == "unlisted test":
        with open(fresh / "tests/course/a1/test_toy_shapes.py", "a") as handle:
            handle.write("\n\ndef test_extra():\n    pass\n")
        message = "pytest collected test_toy_shapes.py::test_extra but the catalogue does not"
    else:
        shapes = fresh / "tests/course/a1/test_toy_shapes.py"
        shapes.write_text(shapes.read_text().replace("def test_area", "def test_area_renamed"))
        message = "the catalogue lists test_toy_shapes.py::test_area but pytest did not collect"
    with pytest.raises(CourseError, match=message):
        grade(fresh, "a1", startup_timeout_s=STARTUP_S)


def test_regions_must_name_solution_regions(tmp_path):
    fresh = make_fake_root(tmp_path / "root")
    catalogue = fresh / "assignments/catalogue.toml"
    catalogue.write_text(
        catalogue.read_text().replace(
            'part = "Part 3: shapes"\n', 'part = "Part 3: shapes"\nregions = ["aera"]\n'
        )
    )
    with pytest.raises(CourseError, match=r"regions names 'aera'.*\(did you mean 'area'\?\)"):
        grade(fresh, "a1", startup_timeout_s=STARTUP_S)
    with pytest.raises(CourseError, match="regions names 'aera'"):
        release(fresh, "a1", tmp_path / "out")


def test_planned_assignment_and_bad_submission_folder(root, tmp_path, capsys):
    assert main(["course", "grade", "a2", "--root", str(root)]) == 2
    assert capsys.readouterr().err == (
        "dlcc: error: a2 is planned: its handout is a stub and it has no graded tests yet\n"
    )
    with pytest.raises(CourseError, match="expected a folder holding the learner's files"):
        grade(root, "a1", submission=tmp_path / "missing")


def test_find_submitted_prefers_the_exact_then_the_best_matching_path(tmp_path):
    source = "src/dlcc/toy/ops.py"
    (tmp_path / "a/src/dlcc/toy").mkdir(parents=True)
    (tmp_path / "a/src/dlcc/other").mkdir(parents=True)
    (tmp_path / "a/src/dlcc/toy/ops.py").write_text("1")
    (tmp_path / "a/src/dlcc/other/ops.py").write_text("2")
    found, _ = find_submitted(tmp_path, source)
    assert found == tmp_path / "a/src/dlcc/toy/ops.py"
    (tmp_path / "b").mkdir()
    (tmp_path / "b/ops.py").write_text("3")
    (tmp_path / "c").mkdir()
    (tmp_path / "c/ops.py").write_text("4")
    (tmp_path / "a/src/dlcc/toy/ops.py").unlink()
    found, why = find_submitted(tmp_path, source)
    assert found is None and why.startswith("3 files named ops.py")
    (tmp_path / "src/dlcc/toy").mkdir(parents=True)
    (tmp_path / "src/dlcc/toy/ops.py").write_text("5")
    assert find_submitted(tmp_path, source)[0] == tmp_path / "src/dlcc/toy/ops.py"


def test_validate_results_rejects_malformed_results():
    good = {
        "score": 1.0,
        "max_score": 2.0,
        "execution_time": 0.5,
        "output": "",
        "stdout_visibility": "visible",
        "tests": [
            {"name": "t", "score": 1.0, "max_score": 2.0, "output": "", "visibility": "visible"}
        ],
    }
    validate_results(good)
    bad_test = {**good["tests"][0], "score": 3.0, "visibility": "public"}
    with pytest.raises(CourseError) as error:
        validate_results({**good, "score": "1", "tests": [bad_test]})
    message = str(error.value)
    assert "score must be a number" in message
    assert "tests[0].score must lie in [0, max_score]" in message
    assert "tests[0].visibility must be one of" in message
    with pytest.raises(CourseError, match="is not the sum of the tests' scores"):
        validate_results({**good, "score": 2.0})
