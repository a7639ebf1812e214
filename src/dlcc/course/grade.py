"""``dlcc course grade aN``: run an assignment's graded tests on a submission and score them.

The grader never imports what it grades. `grade` only orchestrates, in order:

1. check the catalogue, the submission folder and that pytest is there to run;
2. fill a temporary work folder with the package, the learner's files and the tests
   (`dlcc.course.workdir`), and check those files against what the assignment bans
   (`dlcc.course.source_check`: a violation costs the tests that need the region);
3. run pytest on it in sandboxed subprocesses, test by test, surviving time-outs and crashes
   (`dlcc.course.supervise`, `dlcc.course.sandbox`);
4. score the outcomes into a `GradeReport` and optionally write results.json
   (`dlcc.course.report`);
5. delete the work folder, unless asked to keep it.

Without a submission it grades the reference itself (the instructor's self-check, expected to
score 100%). Without ``--hidden``, hidden tests neither run nor count in the maximum.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from dlcc.course import sandbox
from dlcc.course.catalogue import Assignment, GradedTest, load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.release import check_regions
from dlcc.course.report import GradeReport, TestResult
from dlcc.course.source_check import check_sources
from dlcc.course.supervise import Runner
from dlcc.course.workdir import Workspace, build_workspace, remove_tree

DEFAULT_STARTUP_TIMEOUT_S = 60.0
PER_TEST_SLACK_S = 5.0  # the overall limit's allowance per test, for starting and reporting


def grade(
    root: Path,
    assignment_id: str,
    *,
    submission: Path | None = None,
    hidden: bool = False,
    json_path: Path | None = None,
    keep: bool = False,
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
    overall_timeout_s: float | None = None,
) -> GradeReport:
    """Grade `submission` (None: the reference) on `assignment_id`'s tests.

    `startup_timeout_s` bounds any stretch with no test running (importing the tests, the end
    of the session); `overall_timeout_s` bounds the whole grading (default: the selected tests'
    limits summed, plus `startup_timeout_s`, plus 5 s a test). Raises `CourseError` for
    instructor or usage errors; a failing, hanging or crashing submission only costs points.
    """
    began = time.monotonic()
    catalogue = load_catalogue(root)
    assignment = catalogue.ready(assignment_id)
    if hidden and assignment.is_release:
        raise CourseError(
            "this is a release: hidden tests are not included; --hidden grades only on the "
            "instructor's copy"
        )
    if submission is not None:
        submission = Path(submission).expanduser().resolve()
        if not submission.is_dir():
            raise CourseError(
                f"--submission {submission}: expected a folder holding the learner's files "
                f"({', '.join(Path(s).name for s in assignment.sources)})"
            )
    if submission is None:
        check_regions(catalogue.root, assignment)  # part of the instructor's self-check
    selected = assignment.selected_tests(hidden)
    if importlib.util.find_spec("pytest") is None:
        raise CourseError(
            f"grading runs pytest with {sys.executable}, which cannot import it: install it "
            "there (pip install pytest)"
        )
    isolation = sandbox.detect_isolation()
    work = Path(tempfile.mkdtemp(prefix=f"dlcc-grade-{assignment.id}-"))
    try:
        workspace = Workspace(work)
        sources, notes = build_workspace(catalogue, assignment, submission, workspace, hidden)
        checked = check_sources(catalogue.root, assignment, workspace.learner)
        notes += checked.notes
        if overall_timeout_s is None:
            overall_timeout_s = default_overall_timeout(assignment, selected, startup_timeout_s)
        runner = Runner(
            workspace,
            assignment,
            selected,
            isolation,
            startup_timeout_s,
            overall_timeout_s,
            all_sources=sorted(catalogue.source_owners()),
        )
        runner.run()
        notes += runner.notes
    finally:
        if not keep:
            remove_tree(work)
    report = GradeReport(
        assignment=assignment,
        root=catalogue.root,
        submission=submission,
        hidden=hidden,
        sources=sources,
        results=[
            TestResult(test, checked.outcome(test, runner.outcome(test))) for test in selected
        ],
        isolation=isolation,
        execution_time=time.monotonic() - began,
        notes=notes,
        work_folder=work if keep else None,
    )
    if json_path is not None:
        report.write_results_json(json_path)
    return report


def default_overall_timeout(
    assignment: Assignment, selected: list[GradedTest], startup_timeout_s: float
) -> float:
    """The whole grading's limit: every test's own limit, plus start-up, plus slack per test."""
    total = sum(assignment.test_timeout(test) for test in selected)
    return total + (startup_timeout_s + PER_TEST_SLACK_S * len(selected))
