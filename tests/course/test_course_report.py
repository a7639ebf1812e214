"""The report on its own: typed outcomes in, the table and results.json out (no subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from course_fake_root import make_fake_root

from dlcc.course.catalogue import load_catalogue
from dlcc.course.outcome import SourceOrigin, SourceStatus, Status, TestOutcome
from dlcc.course.report import GradeReport, TestResult, validate_results
from dlcc.course.sandbox import Isolation


@pytest.mark.parametrize(
    ("reported", "status"),
    [
        ("passed", Status.PASSED),
        ("failed", Status.FAILED),
        ("error", Status.ERROR),
        ("skipped", Status.SKIPPED),
        ("timed out", Status.ERROR),  # only the parent decides a time-out
        ("xpassed", Status.ERROR),
        (None, Status.ERROR),
    ],
)
def test_status_from_a_finish_event(reported, status):
    assert Status.from_event(reported) is status


def test_only_passed_earns_points_and_every_other_status_reads_failed(tmp_path):
    root = make_fake_root(tmp_path / "root")
    assignment = load_catalogue(root).get("a1")
    selected = assignment.selected_tests(hidden=False)
    statuses = list(Status)
    results = [
        TestResult(test, TestOutcome(statuses[index % len(statuses)], f"line\n{index}"))
        for index, test in enumerate(selected)
    ]
    report = GradeReport(
        assignment=assignment,
        root=root,
        submission=Path("/submission"),
        hidden=False,
        sources=[SourceOrigin(s, SourceStatus.SUBMITTED, Path(s).name) for s in assignment.sources],
        results=results,
        isolation=Isolation("none", "NOT isolated"),
        execution_time=1.234,
    )
    passed = [r for r in results if r.outcome.status is Status.PASSED]
    assert report.score == sum(r.test.points for r in passed) > 0
    data = report.results_json()
    validate_results(data)
    assert data["execution_time"] == 1.23
    assert [t["status"] for t in data["tests"]] == [
        "passed" if r.outcome.status is Status.PASSED else "failed" for r in results
    ]
    assert data["tests"][1]["output"] == "line\n1"  # results.json keeps the feedback as it is
    table = report.table()
    assert "  src/dlcc/toy/ops.py     submitted (ops.py)" in table
    assert "  test_toy_ops.py::test_relu        0/1  line 1" in table  # the table: one line
