"""Grading a whole class (`dlcc course grade aN --submissions DIR --jobs N --out OUT`) on the
fake course root: exact rows, safe unpacking, a hostile submission costing only its row,
resuming, the summary, and one-line usage errors."""

from __future__ import annotations

import csv
import json
import os
import warnings
import zipfile
from pathlib import Path

import pytest
from course_fake_root import OPS, SHAPES, make_fake_root

from dlcc.cli import main
from dlcc.course import batch, submissions
from dlcc.course.batch import grade_class, grade_submission
from dlcc.course.batch_summary import summarise, summary_text, write_summary
from dlcc.course.errors import CourseError
from dlcc.course.fences import strip_solutions
from dlcc.course.report import validate_results
from dlcc.course.submissions import Submission, SubmissionRejected, extract_zip

HOSTILE_OPS = """\
import os
import signal

try:  # kill whoever started it, then leave without a word
    os.kill(os.getppid(), signal.SIGKILL)
except Exception:
    pass
os._exit(0)
"""
HEADER = ["student", "score", "max_score", "Part 1: basics", "Part 2", "Part 3: shapes"]
EXPECTED_ROWS = [
    ["alice", "14", "14", "3", "8", "3", "graded", ""],
    ["bob", "13", "14", "2", "8", "3", "graded", ""],
    ["broken", "0", "14", "0", "0", "0", "rejected"],
    ["carol", "3", "14", "0", "0", "3", "graded", ""],
    ["dave", "0", "14", "0", "0", "0", "graded", ""],
    ["evil", "0", "14", "0", "0", "0", "rejected"],
    ["mallory", "0", "14", "0", "0", "0"],  # graded, or an error row if it killed its worker
]


def write_folder(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The fake root and a class of seven submissions."""
    base = tmp_path_factory.mktemp("class")
    root = make_fake_root(base / "root")
    subs = base / "submissions"
    write_folder(subs / "alice", {"ops.py": OPS, "shapes.py": SHAPES})
    write_folder(subs / "bob", {"ops.py": OPS.replace("return a + b", "return a - b"),
                                "src/dlcc/toy/shapes.py": SHAPES})  # fmt: skip
    stubs = {"ops.py": strip_solutions(OPS, "ops.py", "a1"),
             "shapes.py": strip_solutions(SHAPES, "shapes.py", "a1")}  # fmt: skip
    write_folder(subs / "dave", stubs)
    write_folder(subs / "mallory", {"ops.py": HOSTILE_OPS})
    with zipfile.ZipFile(subs / "carol.zip", "w") as archive:
        archive.writestr("carol/shapes.py", SHAPES)
        archive.writestr("__MACOSX/._shapes.py", "junk")
    with zipfile.ZipFile(subs / "evil.zip", "w") as archive:
        archive.writestr("ops.py", OPS)
        archive.writestr("../escaped.py", "print('outside')")
    (subs / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (subs / "notes.txt").write_text("not a submission")
    return root, subs


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    root, subs = course
    out = tmp_path_factory.mktemp("grades") / "grades"
    run = grade_class(root, "a1", subs, out, jobs=2, progress=False, log=lambda _: None)
    return root, subs, out, run


def test_every_row_is_exact_and_the_csv_holds_it(graded):
    _, subs, out, run = graded
    with open(out / "grades.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*HEADER, "status", "reason"]
    assert [row[0] for row in rows[1:]] == [expected[0] for expected in EXPECTED_ROWS]
    for row, expected in zip(rows[1:], EXPECTED_ROWS, strict=True):
        assert row[: len(expected)] == expected
    reasons = {row[0]: row[-1] for row in rows[1:]}
    assert reasons["evil"] == "evil.zip has a '..' path: ../escaped.py"
    assert reasons["broken"].startswith("broken.zip is not a readable zip")
    assert rows[-1][6] in ("graded", "error")  # mallory: only its own row, whichever
    assert not (subs.parent / "escaped.py").exists()
    assert sorted(run.graded) == sorted(row[0] for row in rows[1:])


def test_each_student_gets_results_json_and_feedback(graded):
    _, _, out, _ = graded
    for student in ("alice", "bob", "broken", "carol", "dave", "evil", "mallory"):
        results = json.loads((out / student / "results.json").read_text())
        validate_results(results)
        assert results["max_score"] == 14
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert bob["score"] == 13
    assert [t["name"] for t in bob["tests"] if t["status"] == "failed"] == [
        "Part 1: basics | test_toy_ops.py::test_add"
    ]
    feedback = (out / "bob" / "feedback.txt").read_text()
    assert "add(2, 3) should be 5, got -1" in feedback
    assert "Total: 13/14" in feedback
    assert "not graded: evil.zip has a '..' path" in (out / "evil" / "feedback.txt").read_text()


def test_rerun_skips_every_unchanged_submission_and_regrades_a_changed_one(graded, course):
    root, subs, out, first = graded
    final = [r["student"] for r in first.records if r["status"] != "error"]
    said = []
    again = grade_class(root, "a1", subs, out, jobs=2, progress=False, log=said.append)
    assert again.skipped == final
    assert said == [f"{student}: unchanged since it was graded, skipped" for student in final]
    assert [r["score"] for r in again.records] == [r["score"] for r in first.records]
    write_folder(subs / "bob", {"ops.py": OPS})  # bob fixes his bug
    fixed = grade_class(root, "a1", subs, out, jobs=1, progress=False, log=lambda _: None)
    assert "bob" in fixed.graded and "bob" not in fixed.skipped
    assert next(r for r in fixed.records if r["student"] == "bob")["score"] == 14


def test_summary_histogram_most_failed_and_png(graded):
    _, _, out, run = graded
    summary = summarise("a1", run.records, run.wall_time_s)
    assert summary["submissions"] == 7
    counts = [bucket["count"] for bucket in summary["histogram"]]
    graded_count = summary["graded"]
    assert sum(counts) == graded_count
    assert counts[9] == 2  # alice 14/14 and bob 13/14
    assert counts[2] == 1  # carol 3/14
    top = summary["most_failed"][0]
    assert top["test"] == "test_toy_ops.py::test_add"
    assert top["failed"] == graded_count - 1  # all but alice
    text = summary_text(summary)
    assert "tests most often failed" in text and "[ 90%, 100%]" in text
    paths = write_summary(out, summary)
    assert json.loads((out / "summary.json").read_text())["graded"] == graded_count
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_exception_in_one_grading_becomes_its_error_row(course, tmp_path, monkeypatch):
    root, subs = course

    def explode(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(batch, "grade", explode)
    parts = {"Part 1: basics": 9.0, "Part 2": 8.0}
    task = (root, "a1", False, tmp_path, parts)
    record = grade_submission(task, Submission("alice", subs / "alice"), "key")
    assert record["status"] == "error"
    assert record["reason"] == "grader error: RuntimeError: boom"
    assert record["score"] == 0 and record["max_score"] == 17
    validate_results(json.loads((tmp_path / "alice" / "results.json").read_text()))


def test_zip_members_that_escape_or_link_are_refused(tmp_path):
    def zipped(name: str, members: list[tuple[zipfile.ZipInfo | str, str]]) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for member, text in members:
                archive.writestr(member, text)
        return path

    link = zipfile.ZipInfo("ops.py")
    link.external_attr = 0o120777 << 16
    cases = {
        "absolute.zip": ([("/etc/ops.py", "x")], "has an absolute path"),
        "drive.zip": ([("C:/ops.py", "x")], "has an absolute path"),
        "dots.zip": ([("a/../../ops.py", "x")], "has a '..' path"),
        "link.zip": ([(link, "/etc/passwd")], "has a symbolic link"),
        "twice.zip": ([("ops.py", "a"), ("ops.py", "b")], "twice"),
    }
    for name, (members, message) in cases.items():
        destination = tmp_path / name.replace(".zip", "")
        destination.mkdir()
        with warnings.catch_warnings():  # zipfile warns of the duplicate name
            warnings.simplefilter("ignore")
            path = zipped(name, members)
        with pytest.raises(SubmissionRejected, match=message):
            extract_zip(path, destination)
        assert list(destination.rglob("*")) == [], name  # nothing written before refusing


def test_zip_and_folder_size_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_SUBMISSION_BYTES", 1000)
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ops.py", "0" * 5000)  # compresses to a few bytes: a small bomb
    (tmp_path / "out").mkdir()
    with pytest.raises(SubmissionRejected, match="unpacks to over"):
        extract_zip(path, tmp_path / "out")
    write_folder(tmp_path / "folder", {"ops.py": "0" * 5000})
    with pytest.raises(SubmissionRejected, match="over"):
        with submissions.unpacked(Submission("x", tmp_path / "folder")):
            pass


def test_a_folder_copy_keeps_only_regular_files(tmp_path):
    write_folder(tmp_path / "s", {"ops.py": OPS, "__pycache__/x.pyc": "", ".venv/a.py": ""})
    os.mkfifo(tmp_path / "s" / "shapes.py")  # would block a reader forever
    (tmp_path / "s" / "link.py").symlink_to("/etc/passwd")
    with submissions.unpacked(Submission("s", tmp_path / "s")) as copy:
        assert sorted(p.name for p in copy.rglob("*")) == ["ops.py"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--submissions", "{missing}", "--out", "{out}"], "no such folder"),
        (["--submissions", "{empty}", "--out", "{out}"], "no submissions"),
        (["--submissions", "{empty}"], "needs --out"),
        (["--submissions", "{subs}", "--out", "{out}", "--jobs", "0"], "--jobs 0"),
    ],
)
def test_usage_errors_are_one_line(argv, message, course, tmp_path, capsys):
    root, subs = course
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "out": tmp_path / "o",
             "subs": subs}  # fmt: skip
    filled = [part.format(**names) for part in argv]
    assert main(["course", "grade", "a1", "--root", str(root), *filled]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_unknown_assignment_is_one_line(course, tmp_path, capsys):
    root, subs = course
    argv = ["course", "grade", "a9", "--root", str(root), "--submissions", str(subs)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_find_submissions_ignores_hidden_and_other_files(course):
    _, subs = course
    found = submissions.find_submissions(subs)
    assert [s.student for s in found] == [row[0] for row in EXPECTED_ROWS]
    with pytest.raises(CourseError, match="no such folder"):
        submissions.find_submissions(subs / "missing")
