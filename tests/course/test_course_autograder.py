"""The Gradescope autograder zip (`dlcc course autograder aN --out ZIP`), on the fake root:
its members, determinism, setup.sh's form, and run_autograder in a simulated Gradescope
layout (ROOT/autograder/source, submission, results) with this Python environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from course_fake_root import OPS, SHAPES, make_fake_root

import dlcc
from dlcc.cli import main
from dlcc.course.autograder import build_autograder
from dlcc.course.fences import strip_solutions
from dlcc.course.report import validate_results

SRC = Path(dlcc.__file__).resolve().parents[1]  # the real dlcc: the grader that runs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("autograder")
    root = make_fake_root(base / "root")
    return root, build_autograder(root, "a1", base / "autograder.zip")


def gradescope(tmp_path: Path, zip_path: Path, files: dict[str, str]) -> tuple[Path, dict]:
    """Unpack as Gradescope does, hand in `files`, run run_autograder; (root, results)."""
    root = tmp_path / "gs"
    source, submission = root / "autograder" / "source", root / "autograder" / "submission"
    for folder in (source, submission, root / "autograder" / "results"):
        folder.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(source)
    for name, text in files.items():
        (submission / name).write_text(text, encoding="utf-8")
    environment = {
        **os.environ,
        "DLCC_AUTOGRADER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    completed = subprocess.run(
        ["bash", str(source / "run_autograder"), str(root / "autograder")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((root / "autograder" / "results" / "results.json").read_text())
    validate_results(results)
    return root, results


def test_zip_holds_scripts_reference_and_every_test(built):
    _, made = built
    with zipfile.ZipFile(made.path) as archive:
        names = archive.namelist()
        infos = {info.filename: info for info in archive.infolist()}
        later = archive.read("course/src/dlcc/toy/later.py").decode()
        ops = archive.read("course/src/dlcc/toy/ops.py").decode()
        catalogue = archive.read("course/assignments/catalogue.toml").decode()
    assert names == sorted(names)
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert "course/tests/course/a1/test_toy_hidden.py" in names  # hidden tests included
    assert "course/tests/course/a3/test_toy_later.py" not in names
    assert "the a3 solution" not in later  # another assignment's solution stays out
    assert "return a + b" in ops  # this assignment's reference is in
    assert 'test = "test_toy_hidden.py::test_add_large"' in catalogue and "[a3]" not in catalogue
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos.values())
    assert infos["run_autograder"].external_attr >> 16 == 0o100755
    assert made.tests == 14


def test_zip_is_deterministic(built, tmp_path):
    root, made = built
    again = build_autograder(root, "a1", tmp_path / "again.zip")
    assert again.path.read_bytes() == made.path.read_bytes()


def test_setup_sh_is_well_formed_and_pins_the_cpu_torch(built, tmp_path):
    root, made = built
    with zipfile.ZipFile(made.path) as archive:
        archive.extract("setup.sh", tmp_path)
    script = tmp_path / "setup.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    dry = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "pip install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in (
        dry.stdout
    )
    assert "/course[torch]" in dry.stdout
    gpu = build_autograder(root, "a1", tmp_path / "gpu.zip", torch="torch==2.13.0", torch_index="")
    with zipfile.ZipFile(gpu.path) as archive:
        text = archive.read("setup.sh").decode()
    assert 'TORCH_INDEX=""' in text


def test_reference_submission_gets_full_marks(built, tmp_path):
    _, made = built
    _, results = gradescope(tmp_path, made.path, {"ops.py": OPS, "shapes.py": SHAPES})
    assert results["score"] == results["max_score"] == 20  # hidden tests count
    hidden = [t for t in results["tests"] if t["visibility"] == "after_published"]
    assert len(hidden) == 2


def test_release_stub_scores_zero(built, tmp_path):
    _, made = built
    stubs = {
        "ops.py": strip_solutions(OPS, "ops.py", "a1"),
        "shapes.py": strip_solutions(SHAPES, "shapes.py", "a1"),
    }
    _, results = gradescope(tmp_path, made.path, stubs)
    assert results["score"] == 0 and results["max_score"] == 20
    assert all(t["output"].startswith("not implemented yet: a1: ") for t in results["tests"])


def test_a_grading_that_cannot_run_still_writes_results(built, tmp_path):
    _, made = built
    root, _ = gradescope(tmp_path, made.path, {})
    (root / "autograder" / "submission").rmdir()  # Gradescope gave no submission folder
    environment = {
        **os.environ,
        "DLCC_AUTOGRADER_ROOT": str(root / "autograder"),
        "DLCC_AUTOGRADER_PYTHON": sys.executable,
        "PYTHONPATH": str(SRC),
    }
    script = root / "autograder" / "source" / "run_autograder"
    completed = subprocess.run(["bash", str(script)], env=environment, capture_output=True)
    assert completed.returncode == 1
    results = json.loads((root / "autograder" / "results" / "results.json").read_text())
    validate_results(results)
    assert results["score"] == 0 and "could not grade" in results["output"]


def test_cli_builds_it_and_refuses_unknown_assignments(built, tmp_path, capsys):
    root, _ = built
    out = tmp_path / "cli.zip"
    assert main(["course", "autograder", "a1", "--root", str(root), "--out", str(out)]) == 0
    assert "14 graded tests" in capsys.readouterr().out
    assert main(["course", "autograder", "a9", "--root", str(root), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["course", "autograder", "a2", "--root", str(root), "--out", str(out)]) == 2
