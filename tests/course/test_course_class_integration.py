"""Class grading and the Gradescope autograder on the real a1 (slow: select with
``-m course_integration``). Four generated submissions (the reference, the release, a one-bug
variant, a mixture; see assignments/a1/instructor/make_class.py) graded with --jobs 2 score
exactly what the catalogue's regions say; a rerun skips all four; the autograder zip gives
the reference full marks in a simulated Gradescope layout."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dlcc
from dlcc.course.autograder import build_autograder
from dlcc.course.batch import grade_class
from dlcc.course.catalogue import CATALOGUE_PATH, load_catalogue
from dlcc.course.report import validate_results

pytestmark = pytest.mark.course_integration

REPO = Path(dlcc.__file__).resolve().parents[2]
MAKE_CLASS = REPO / "assignments" / "a1" / "instructor" / "make_class.py"


@pytest.fixture(scope="module")
def make_class():
    if not (REPO / CATALOGUE_PATH).is_file() or not MAKE_CLASS.is_file():
        pytest.skip("this checkout has no a1 catalogue or instructor tools")
    spec = importlib.util.spec_from_file_location("a1_make_class", MAKE_CLASS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_four_real_submissions_score_exactly_and_a_rerun_skips_them(make_class, tmp_path):
    assignment = load_catalogue(REPO).ready("a1")
    regions = make_class.regions_of(assignment)
    students = {
        "reference": (regions, None),
        "release": ([], None),
        "sigmoid_bug": (regions, "Sigmoid.forward"),
        "mixture": (["ReLU.forward", "log_softmax", "describe_environment", "SGD._update"], None),
    }
    subs = tmp_path / "submissions"
    expected = {}
    for name, (kept, bug) in students.items():
        files = make_class.submission_files(assignment, kept, bug)
        if name == "mixture":  # one as a zip of the release layout
            subs.mkdir(exist_ok=True)
            with zipfile.ZipFile(subs / f"{name}.zip", "w") as archive:
                for source, text in files.items():
                    archive.writestr(source, text)
        else:
            for source, text in files.items():
                (subs / name).mkdir(parents=True, exist_ok=True)
                (subs / name / Path(source).name).write_text(text)
        expected[name] = make_class.expected_score(assignment, kept, bug)["score"]
    assert expected == {"reference": 100, "release": 0, "sigmoid_bug": 98, "mixture": 17}
    out = tmp_path / "grades"
    run = grade_class(REPO, "a1", subs, out, jobs=2, hidden=True, progress=False)
    with open(out / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert {name: float(row["score"]) for name, row in rows.items()} == expected
    assert all(row["status"] == "graded" and row["max_score"] == "100" for row in rows.values())
    for name in students:
        validate_results(json.loads((out / name / "results.json").read_text()))
    again = grade_class(REPO, "a1", subs, out, jobs=2, hidden=True, progress=False)
    assert sorted(again.skipped) == sorted(students) and again.graded == []
    assert run.wall_time_s > again.wall_time_s


def test_autograder_zip_gives_the_reference_full_marks(tmp_path):
    if not (REPO / CATALOGUE_PATH).is_file():
        pytest.skip("this checkout has no assignments/catalogue.toml")
    made = build_autograder(REPO, "a1", tmp_path / "autograder.zip")
    root = tmp_path / "gs" / "autograder"
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(made.path) as archive:
        archive.extractall(root / "source")
    assignment = load_catalogue(REPO).ready("a1")
    for source in assignment.sources:
        (root / "submission" / Path(source).name).write_bytes((REPO / source).read_bytes())
    environment = {
        **os.environ,
        "DLCC_AUTOGRADER_ROOT": str(root),
        "DLCC_AUTOGRADER_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO / "src"),
    }
    completed = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    validate_results(results)
    assert results["score"] == results["max_score"] == 100
