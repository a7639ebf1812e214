"""``dlcc course autograder aN --out autograder.zip``: a Gradescope autograder for one assignment.

This module owns the zip's contents and the program it runs. Gradescope unpacks the zip into
``/autograder/source``, runs ``setup.sh`` once (as root, on Ubuntu), then, per submission,
``run_autograder`` with the learner's files in ``/autograder/submission``; it reads
``/autograder/results/results.json``. The zip holds::

    setup.sh          apt: python3-venv; a venv in /autograder/venv; the pinned CPU torch
                      (TORCH_REQUIREMENT / TORCH_INDEX at its top, or --torch/--torch-index
                      when building, override it, e.g. for a CUDA build); the course package
    run_autograder    grades the submission with every test, hidden ones included (Gradescope
                      shows them after publishing), via ``python -m dlcc.course.autograder``
    course/           a course root: pyproject.toml, README.md, src/dlcc/ with this
                      assignment's sources as the reference and every other assignment's
                      regions stubbed, assignments/catalogue.toml (this assignment only, hidden
                      tests kept), the handout, and the tests_dir with the hidden tests

The roots come from the environment (DLCC_AUTOGRADER_ROOT, or each of _SOURCE, _SUBMISSION,
_RESULTS, and DLCC_AUTOGRADER_PYTHON) or run_autograder's first argument, so a test can run
it in a temporary layout. The zip is deterministic: sorted members, fixed timestamps and modes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dlcc.atomic import atomic_write, write_text_atomic
from dlcc.course.catalogue import CATALOGUE_PATH, PACKAGE_SOURCE, load_catalogue, render_catalogue
from dlcc.course.errors import CourseError
from dlcc.course.release import copy_package, walk_files

DEFAULT_TORCH = "torch==2.13.0"  # the Makefile's pin: the build the tests' oracle expects
DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
COURSE_FOLDER = "course"
ROOT_FILES = ("pyproject.toml", "README.md", "LICENSE")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image. `bash setup.sh --dry-run` prints
# the commands without running them.
# torch: the pinned CPU build the graded tests' oracle expects. For another build, edit these
# two lines, or rebuild the zip with
#   dlcc course autograder {assignment} --out autograder.zip --torch "torch==2.13.0" \\
#       --torch-index https://download.pytorch.org/whl/cu126
# (an empty TORCH_INDEX installs from PyPI).
TORCH_REQUIREMENT={torch}
TORCH_INDEX={index}
set -euo pipefail
DRY_RUN=0
if [ "${{1:-}}" = "--dry-run" ]; then DRY_RUN=1; fi
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
VENV="${{DLCC_AUTOGRADER_VENV:-/autograder/venv}}"
run() {{
    echo "+ $*"
    if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}}
export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y --no-install-recommends python3 python3-venv python3-pip util-linux
run python3 -m venv "$VENV"
run "$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -n "$TORCH_INDEX" ]; then
    run "$VENV/bin/python" -m pip install --quiet "$TORCH_REQUIREMENT" --index-url "$TORCH_INDEX"
else
    run "$VENV/bin/python" -m pip install --quiet "$TORCH_REQUIREMENT"
fi
run "$VENV/bin/python" -m pip install --quiet "$HERE/{course}[torch]" "pytest>=8"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission with the bundled
# reference and tests (hidden ones included), write /autograder/results/results.json.
# Usage: run_autograder [ROOT]  (ROOT default: $DLCC_AUTOGRADER_ROOT, else /autograder)
set -uo pipefail
ROOT="${{1:-${{DLCC_AUTOGRADER_ROOT:-/autograder}}}}"
SOURCE="${{DLCC_AUTOGRADER_SOURCE:-$ROOT/source}}"
SUBMISSION="${{DLCC_AUTOGRADER_SUBMISSION:-$ROOT/submission}}"
RESULTS="${{DLCC_AUTOGRADER_RESULTS:-$ROOT/results}}"
PYTHON="${{DLCC_AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$RESULTS"
cd "$RESULTS"
exec "$PYTHON" -m dlcc.course.autograder run {assignment} --root "$SOURCE/{course}" \\
    --submission "$SUBMISSION" --results "$RESULTS/results.json"
"""


@dataclass(frozen=True)
class BuiltAutograder:
    path: Path
    files: int
    tests: int
    torch: str


def bundle_files(
    root: Path, assignment_id: str, torch: str | None = None, torch_index: str | None = None
) -> dict[str, tuple[bytes, int]]:
    """Every member of the zip: its name -> (bytes, mode). Raises `CourseError` for an
    unknown or planned assignment."""
    catalogue = load_catalogue(root)
    assignment = catalogue.ready(assignment_id)
    torch = DEFAULT_TORCH if torch is None else torch
    torch_index = DEFAULT_TORCH_INDEX if torch_index is None else torch_index
    files: dict[str, tuple[bytes, int]] = {}

    def add_tree(folder: Path, prefix: str) -> None:
        for relative in walk_files(folder):
            files[f"{prefix}/{relative.as_posix()}"] = ((folder / relative).read_bytes(), 0o644)

    with tempfile.TemporaryDirectory(prefix="dlcc-autograder-") as temporary:
        package = Path(temporary) / "dlcc"
        copy_package(catalogue, package, stub=True)  # every assignment's regions stubbed...
        add_tree(package, f"{COURSE_FOLDER}/{PACKAGE_SOURCE.as_posix()}")
    for source in assignment.sources:  # ...but this one's: the reference the grader lays over
        files[f"{COURSE_FOLDER}/{source}"] = ((catalogue.root / source).read_bytes(), 0o644)
    for name in ROOT_FILES:
        if (catalogue.root / name).is_file():
            files[f"{COURSE_FOLDER}/{name}"] = ((catalogue.root / name).read_bytes(), 0o644)
    header = f"The {assignment.id} autograder's catalogue: hidden tests included."
    catalogue_text = render_catalogue([assignment], header)
    files[f"{COURSE_FOLDER}/{CATALOGUE_PATH.as_posix()}"] = (catalogue_text.encode(), 0o644)
    handout = catalogue.root / assignment.handout
    files[f"{COURSE_FOLDER}/{assignment.handout}"] = (handout.read_bytes(), 0o644)
    add_tree(catalogue.root / assignment.tests_dir, f"{COURSE_FOLDER}/{assignment.tests_dir}")
    setup = SETUP_SH.format(
        assignment=assignment.id,
        torch=shlex.quote(torch),
        index=shlex.quote(torch_index) if torch_index else '""',
        course=COURSE_FOLDER,
    )
    files["setup.sh"] = (setup.encode(), 0o755)
    run = RUN_AUTOGRADER.format(assignment=assignment.id, course=COURSE_FOLDER)
    files["run_autograder"] = (run.encode(), 0o755)
    return files


def build_autograder(
    root: Path,
    assignment_id: str,
    out: Path,
    *,
    torch: str | None = None,
    torch_index: str | None = None,
) -> BuiltAutograder:
    """Write the autograder zip to `out`, atomically and deterministically."""
    files = bundle_files(root, assignment_id, torch, torch_index)
    out = Path(out).expanduser()
    if out.is_dir():
        raise CourseError(f"--out {out}: is a folder; give the zip's path, e.g. autograder.zip")
    with atomic_write(out) as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                data, mode = files[name]
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100000 | mode) << 16
                info.create_system = 3  # Unix, so the modes are honoured
                archive.writestr(info, data)
    tests = len(load_catalogue(root).ready(assignment_id).tests)
    return BuiltAutograder(out, len(files), tests, torch or DEFAULT_TORCH)


def run(root: Path, assignment_id: str, submission: Path, results: Path) -> int:
    """Grade `submission` with every test and write `results`; if grading cannot complete,
    write a results.json scoring 0 that says why (Gradescope shows it), and return 1."""
    from dlcc.course.grade import grade

    try:
        grade(root, assignment_id, submission=submission, hidden=True, json_path=results)
    except Exception as error:  # the learner must see a result, whatever went wrong
        message = f"the autograder could not grade this submission: {error}"
        print(message, file=sys.stderr)
        data = {
            "score": 0.0,
            "max_score": 0.0,
            "execution_time": 0.0,
            "output": message,
            "stdout_visibility": "visible",
            "tests": [],
        }
        try:
            data["max_score"] = float(
                sum(t.points for t in load_catalogue(root).ready(assignment_id).tests)
            )
        except Exception:
            pass
        write_text_atomic(results, json.dumps(data, indent=2) + "\n")
        return 1
    print(f"wrote {results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m dlcc.course.autograder run aN --root R --submission S --results F``."""
    parser = argparse.ArgumentParser(prog="python -m dlcc.course.autograder")
    commands = parser.add_subparsers(dest="command", required=True)
    grade_parser = commands.add_parser("run", help="grade one submission (run_autograder)")
    grade_parser.add_argument("assignment")
    grade_parser.add_argument("--root", type=Path, required=True)
    grade_parser.add_argument("--submission", type=Path, required=True)
    grade_parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    return run(args.root, args.assignment, args.submission, args.results)


if __name__ == "__main__":
    sys.exit(main())
