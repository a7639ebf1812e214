"""``dlcc course grade aN --submissions DIR --jobs N --out OUT``: grade a whole class.

This module owns the class run: for each submission in DIR (see `dlcc.course.submissions`)
it calls the single-submission `dlcc.course.grade.grade` (which runs the learner's code in
its own sandboxed subprocesses), ``jobs`` at a time in worker processes, and writes OUT::

    OUT/grades.csv              student, score, max_score, one column per part, status, reason
    OUT/summary.json, .png      score histogram and the tests most often failed
    OUT/STUDENT/results.json    Gradescope's results.json for that student
    OUT/STUDENT/feedback.txt    the table the learner would see
    OUT/STUDENT/record.json     the row, the per-test outcomes and the fingerprint

It resumes: a submission whose fingerprint (its files, plus the grader's: the course root's
package, tests and catalogue, the grading code and ``--hidden``) equals its record's is
not graded again. A submission that cannot be unpacked, or whose grading raises, or whose
worker process dies, becomes one ``error`` row; the others are unaffected. Every file is
written atomically (`dlcc.atomic`), the record last, so an interrupted run resumes cleanly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.course.catalogue import CATALOGUE_PATH, PACKAGE_SOURCE, format_points, load_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.grade import grade
from dlcc.course.submissions import (
    Submission,
    SubmissionRejected,
    find_submissions,
    fingerprint_submission,
    hash_tree,
    unpacked,
)

RECORD_NAME = "record.json"
GRADES_CSV = "grades.csv"
FINAL_STATUSES = ("graded", "rejected")  # kept on a rerun; an "error" row is retried
RECORD_VERSION = "1"  # part of the fingerprint: bump when a record's fields change
NOT_GRADING_CODE = {"autograder", "batch_summary", "class_commands", "commands"}


@dataclass
class ClassRun:
    """What one class run did: every row, in student order, and which were skipped."""

    assignment_id: str
    out: Path
    records: list[dict]
    skipped: list[str] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0


def grader_fingerprint(root: Path, assignment_id: str, hidden: bool) -> str:
    """sha256 of everything that decides a grade besides the submission."""
    import dlcc.course

    digest = hashlib.sha256(f"{RECORD_VERSION}\0{assignment_id}\0hidden={hidden}\0".encode())
    catalogue = load_catalogue(root)
    assignment = catalogue.ready(assignment_id)
    digest.update((catalogue.root / CATALOGUE_PATH).read_bytes())
    for folder in (catalogue.root / PACKAGE_SOURCE, catalogue.root / assignment.tests_dir):
        digest.update(str(folder.name).encode() + b"\0")
        hash_tree(digest, folder)
    for path in sorted(Path(dlcc.course.__file__).parent.glob("*.py")):
        if path.stem not in NOT_GRADING_CODE:  # the summary, the CLI: no score depends on them
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def grade_class(
    root: Path,
    assignment_id: str,
    submissions: Path,
    out: Path,
    *,
    jobs: int = 1,
    hidden: bool = False,
    progress: bool = True,
    log=print,
) -> ClassRun:
    """Grade every submission in `submissions` into `out` (see the module docstring).

    Gradings run in `jobs` worker processes (even for 1: a grading that kills its process
    must not take this one with it). Raises
    `CourseError` for usage errors (bad folder, none found, unknown assignment, jobs < 1).
    """
    began = time.monotonic()
    if jobs < 1:
        raise CourseError(f"--jobs {jobs}: expected 1 or more worker processes")
    catalogue = load_catalogue(root)
    assignment = catalogue.ready(assignment_id)
    out = Path(out).expanduser().resolve()
    found = find_submissions(Path(submissions), exclude=out)
    fingerprint = grader_fingerprint(catalogue.root, assignment_id, hidden)
    parts = part_names(assignment, hidden)
    records: dict[str, dict] = {}
    pending: list[tuple[Submission, str]] = []
    run = ClassRun(assignment_id, out, [])
    for submission in found:
        key = f"{fingerprint}:{fingerprint_submission(submission)}"
        previous = read_record(out / submission.student / RECORD_NAME)
        if (
            previous is not None
            and previous.get("fingerprint") == key
            and previous.get("status") in FINAL_STATUSES
        ):
            records[submission.student] = previous
            run.skipped.append(submission.student)
            log(f"{submission.student}: unchanged since it was graded, skipped")
        else:
            pending.append((submission, key))
    task = (catalogue.root, assignment_id, hidden, out, parts)
    for record in _run_all(task, pending, jobs, progress):
        records[record["student"]] = record
        run.graded.append(record["student"])
    run.records = [records[s.student] for s in found]
    write_grades_csv(out / GRADES_CSV, run.records, parts)
    run.wall_time_s = time.monotonic() - began
    return run


def _run_all(task, pending: list[tuple[Submission, str]], jobs: int, progress: bool):
    """Yield each pending submission's record as it completes, with a progress bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(pending), desc="grading", unit="submission", disable=not progress)
    try:
        if not pending:
            return
        crashed: list[tuple[Submission, str]] = []
        # spawn: a worker never inherits this process's threads (tqdm's monitor) mid-fork.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(grade_submission, task, s, key): (s, key) for s, key in pending}
            for future in as_completed(futures):
                try:
                    record = future.result()
                except BrokenProcessPool:
                    crashed.append(futures[future])
                    continue
                bar.update()
                yield record
        # A dead worker breaks the whole pool: grade those again one at a time, each in a
        # fresh process of its own, so the one that kills its worker is the only error row.
        for submission, key in crashed:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                try:
                    record = pool.submit(grade_submission, task, submission, key).result()
                except BrokenProcessPool:
                    record = error_record(
                        submission.student, key, task[4], "error", "the grading process died"
                    )
                    _write_outputs(task[3], record, None)
            bar.update()
            yield record
    finally:
        bar.close()


def grade_submission(task, submission: Submission, key: str) -> dict:
    """Grade one submission and write its files; any failure becomes its error row."""
    root, assignment_id, hidden, out, parts = task
    began = time.monotonic()
    try:
        with unpacked(submission) as folder:
            report = grade(root, assignment_id, submission=folder, hidden=hidden)
    except SubmissionRejected as error:
        record = error_record(submission.student, key, parts, "rejected", str(error))
        _write_outputs(out, record, None)
        return record
    except Exception as error:  # a grader failure on this one submission costs only its row
        reason = f"grader error: {type(error).__name__}: {error}".splitlines()[0][:300]
        record = error_record(submission.student, key, parts, "error", reason)
        _write_outputs(out, record, None)
        return record
    earned = dict.fromkeys(parts, 0.0)
    for result in report.results:
        earned[result.test.part] += result.score
    record = {
        "student": submission.student,
        "fingerprint": key,
        "status": "graded",
        "reason": "",
        "score": report.score,
        "max_score": report.max_score,
        "parts": earned,
        "tests": {r.test.test: r.outcome.passed for r in report.results},
        "seconds": round(time.monotonic() - began, 2),
    }
    _write_outputs(out, record, report)
    return record


def error_record(student: str, key: str, parts: dict, status: str, reason: str) -> dict:
    """The row of a submission that was not graded: 0 points, and why."""
    return {
        "student": student,
        "fingerprint": key,
        "status": status,
        "reason": reason,
        "score": 0.0,
        "max_score": float(sum(parts.values())),
        "parts": dict.fromkeys(parts, 0.0),
        "tests": {},
        "seconds": 0.0,
    }


def _write_outputs(out: Path, record: dict, report) -> None:
    """results.json and feedback.txt, then the record (which marks the grading done)."""
    folder = out / record["student"]
    if report is not None:
        report.write_results_json(folder / "results.json")
        write_text_atomic(folder / "feedback.txt", report.table())
    else:
        text = f"not graded: {record['reason']}"
        results = {
            "score": 0.0,
            "max_score": record["max_score"],
            "execution_time": 0.0,
            "output": text,
            "stdout_visibility": "visible",
            "tests": [],
        }
        write_text_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
        write_text_atomic(folder / "feedback.txt", text + "\n")
    write_text_atomic(folder / RECORD_NAME, json.dumps(record, indent=2) + "\n")


def read_record(path: Path) -> dict | None:
    """A previous run's record, or None if absent or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def part_names(assignment, hidden: bool) -> dict[str, float]:
    """Each part of the selected tests, in catalogue order -> its points possible."""
    parts: dict[str, float] = {}
    for test in assignment.selected_tests(hidden):
        parts[test.part] = parts.get(test.part, 0.0) + float(test.points)
    return parts


def write_grades_csv(path: Path, records: list[dict], parts: dict[str, float]) -> None:
    """grades.csv: one row per student; points written as the table writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *parts, "status", "reason"])
    for record in records:
        writer.writerow(
            [
                record["student"],
                format_points(record["score"]),
                format_points(record["max_score"]),
                *(format_points(record["parts"].get(part, 0.0)) for part in parts),
                record["status"],
                record["reason"],
            ]
        )
    write_text_atomic(path, buffer.getvalue())


def class_command_lines(run: ClassRun) -> list[str]:
    """The lines printed after a class run, before the summary."""
    errors = [r for r in run.records if r["status"] != "graded"]
    lines = [
        f"{run.assignment_id}: {len(run.records)} submissions: {len(run.graded)} graded now "
        f"(or refused), {len(run.skipped)} unchanged and skipped, {len(errors)} not graded "
        f"(wall time {run.wall_time_s:.1f} s)"
    ]
    lines.extend(f"  {r['student']}: {r['status']}: {r['reason']}" for r in errors)
    lines.append(f"wrote {run.out / GRADES_CSV} and one folder per student")
    return lines
