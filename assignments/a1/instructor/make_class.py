"""Instructors only (not part of a release): a generated class of a1 submissions, and the
check that class grading scores each one exactly.

Each submission is the release with some solution regions pasted back (the reference's) and
maybe one of those regions carrying a bug; a third are zips (``src/dlcc/...`` paths), the
rest folders of flat files. Its expected score is computed from the catalogue alone: a test
earns its points when every region it lists is pasted back and none of them is the bugged
one (hidden tests included: grade with ``--hidden``)::

    .venv/bin/python assignments/a1/instructor/make_class.py make /tmp/class --count 30
    .venv/bin/dlcc course grade a1 --hidden --submissions /tmp/class/submissions \\
        --jobs 2 --out /tmp/class/grades
    .venv/bin/python assignments/a1/instructor/make_class.py check /tmp/class

``make`` writes ``DIR/submissions/`` and ``DIR/expected.json``; ``check`` compares
``DIR/grades/grades.csv`` with it, prints every difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import zipfile
from pathlib import Path

from dlcc.course.catalogue import load_catalogue
from dlcc.course.fences import parse_regions, strip_solutions

REPO = Path(__file__).resolve().parents[3]
ASSIGNMENT = "a1"
# One blatant bug per region: (file, reference text, buggy text). Each breaks every test that
# lists its region (a subtle one, such as "=" for "+=", can slip past a convergence test).
BUGS = {
    "Sigmoid.forward": (
        "src/dlcc/numpy_nn/layers.py",
        "self.output = np.exp(-np.logaddexp(0, -x))",
        "self.output = np.exp(-np.logaddexp(0, x))",
    ),
    "Sigmoid.backward": (
        "src/dlcc/numpy_nn/layers.py",
        "return grad_out * self.output * (1 - self.output)",
        "return grad_out * self.output",
    ),
    "Linear.forward": (
        "src/dlcc/numpy_nn/layers.py",
        'out = x @ self.params["weight"].T  # (N, *, out)',
        'out = x @ self.params["weight"]  # (N, *, out)',
    ),
    "Linear.backward": (
        "src/dlcc/numpy_nn/layers.py",
        'self.grads["weight"] += grad2d.T @ x2d  # (out, in)',
        'self.grads["weight"] -= grad2d.T @ x2d  # (out, in)',
    ),
    "MaxPool2d.forward": (
        "src/dlcc/numpy_nn/pooling.py",
        "windows, out)\n        return out.transpose(0, 3, 1, 2)",
        "windows, out)\n        return out.transpose(0, 3, 1, 2) * 0",
    ),
}


def regions_of(assignment) -> list[str]:
    names = []
    for source in assignment.sources:
        text = (REPO / source).read_text(encoding="utf-8")
        names.extend(region.function for region in parse_regions(text, source))
    return names


def plan(count: int, seed: int, regions: list[str]) -> list[dict]:
    """Who pastes back which regions and which (if any) is bugged: the reference, the bare
    release, one variant per bug over the reference, then random mixtures."""
    rng = random.Random(seed)
    students = [{"kept": list(regions), "bug": None}, {"kept": [], "bug": None}]
    students += [{"kept": list(regions), "bug": bug} for bug in BUGS]
    while len(students) < count:
        share = rng.choice([0.2, 0.5, 0.8, 0.95])
        kept = [region for region in regions if rng.random() < share]
        buggable = [region for region in kept if region in BUGS]
        bug = rng.choice(buggable) if buggable and rng.random() < 0.4 else None
        students.append({"kept": kept, "bug": bug})
    for index, student in enumerate(students[:count]):
        student["student"] = f"student{index:02d}"
        student["zip"] = index % 3 == 2
    return students[:count]


def expected_score(assignment, kept: list[str], bug: str | None) -> dict:
    working = set(kept) - {bug}
    passing = [t for t in assignment.tests if set(t.regions or ()) <= working]
    return {
        "score": float(sum(t.points for t in passing)),
        "passed": sorted(t.test for t in passing),
    }


def submission_files(assignment, kept: list[str], bug: str | None) -> dict[str, str]:
    """Root-relative source path -> the text the student hands in."""
    files = {}
    for source in assignment.sources:
        reference = (REPO / source).read_text(encoding="utf-8")
        text = strip_solutions(reference, source, ASSIGNMENT, keep=lambda r: r.function in kept)
        if bug is not None and BUGS[bug][0] == source:
            _, right, wrong = BUGS[bug]
            assert text.count(right) == 1, f"the {bug} bug no longer applies to {source}"
            text = text.replace(right, wrong)
        files[source] = text
    return files


def make(folder: Path, count: int, seed: int) -> None:
    assignment = load_catalogue(REPO).ready(ASSIGNMENT)
    submissions = folder / "submissions"
    if submissions.exists():
        shutil.rmtree(submissions)
    submissions.mkdir(parents=True)
    expected = {}
    for student in plan(count, seed, regions_of(assignment)):
        files = submission_files(assignment, student["kept"], student["bug"])
        name = student["student"]
        if student["zip"]:
            with zipfile.ZipFile(submissions / f"{name}.zip", "w") as archive:
                for source, text in files.items():
                    archive.writestr(f"{name}/{source}", text)
        else:
            for source, text in files.items():
                (submissions / name).mkdir(exist_ok=True)
                (submissions / name / Path(source).name).write_text(text, encoding="utf-8")
        expected[name] = {
            "kept": student["kept"],
            "bug": student["bug"],
            **expected_score(assignment, student["kept"], student["bug"]),
        }
    (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    scores = sorted(entry["score"] for entry in expected.values())
    print(f"wrote {count} submissions to {submissions}; expected scores {scores}")


def check(folder: Path) -> int:
    expected = json.loads((folder / "expected.json").read_text())
    with open(folder / "grades" / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    differences = []
    for name, entry in expected.items():
        row = rows.get(name)
        if row is None:
            differences.append(f"{name}: no row in grades.csv")
            continue
        got = float(row["score"])
        if row["status"] != "graded" or got != entry["score"]:
            record = json.loads((folder / "grades" / name / "record.json").read_text())
            passed = sorted(test for test, ok in record["tests"].items() if ok)
            extra = sorted(set(passed) - set(entry["passed"]))
            missing = sorted(set(entry["passed"]) - set(passed))
            differences.append(
                f"{name}: {row['status']} {got} != expected {entry['score']} "
                f"(bug {entry['bug']}; passed too: {extra}; failed: {missing}; {row['reason']})"
            )
    exact = len(expected) - len(differences)
    print(f"{exact}/{len(expected)} scores exact")
    print("\n".join(differences))
    return 1 if differences else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    making = commands.add_parser("make", help="write DIR/submissions and DIR/expected.json")
    making.add_argument("folder", type=Path)
    making.add_argument("--count", type=int, default=30)
    making.add_argument("--seed", type=int, default=0)
    checking = commands.add_parser("check", help="compare DIR/grades/grades.csv with it")
    checking.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.folder, args.count, args.seed)
        return 0
    return check(args.folder)


if __name__ == "__main__":
    sys.exit(main())
