"""The class-wide course commands, kept out of ``commands.py``:

- ``dlcc course grade aN --submissions DIR --jobs N --out OUT`` (options added to ``grade``;
  `dlcc.course.batch`);
- ``dlcc course autograder aN --out autograder.zip`` (`dlcc.course.autograder`).

Registration imports nothing heavy; each handler imports its module when run.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_class_arguments(grade: argparse.ArgumentParser) -> None:
    """The options of ``grade`` that grade a whole class."""
    grade.add_argument(
        "--submissions",
        type=Path,
        default=None,
        help="grade a class: a folder holding one folder or .zip per student (needs --out)",
    )
    grade.add_argument(
        "--jobs", type=int, default=1, help="with --submissions: gradings run at once (default 1)"
    )
    grade.add_argument(
        "--out",
        type=Path,
        default=None,
        help="with --submissions: folder for grades.csv, the summary and one folder per student",
    )


def class_grade_command(args: argparse.Namespace, root: Path) -> int:
    """Grade every submission, print the run's lines and the summary tables."""
    from dlcc.course.batch import class_command_lines, grade_class
    from dlcc.course.batch_summary import summarise, summary_text, write_summary
    from dlcc.course.errors import CourseError

    if args.out is None:
        raise CourseError("--submissions needs --out DIR (where grades.csv is written)")
    if args.submission is not None or args.json is not None or args.keep:
        raise CourseError("--submissions grades a class: drop --submission, --json and --keep")
    run = grade_class(
        root, args.assignment, args.submissions, args.out, jobs=args.jobs, hidden=args.hidden
    )
    print("\n".join(class_command_lines(run)))
    summary = summarise(run.assignment_id, run.records, run.wall_time_s)
    print()
    print(summary_text(summary), end="")
    for path in write_summary(run.out, summary):
        print(f"wrote {path}")
    return 0


def register_autograder(course_commands) -> None:
    """Add ``dlcc course autograder aN --out ZIP``."""
    from dlcc.course.commands import add_root_argument

    parser = course_commands.add_parser(
        "autograder", help="build a Gradescope autograder zip for an assignment"
    )
    parser.add_argument("assignment", help="assignment id, e.g. a1")
    parser.add_argument("--out", required=True, type=Path, help="the zip to write")
    parser.add_argument(
        "--torch",
        default=None,
        help="pip requirement for torch in setup.sh (default: the pinned CPU build)",
    )
    parser.add_argument(
        "--torch-index",
        default=None,
        help="pip index for torch (default: PyTorch's CPU index; '' for PyPI)",
    )
    add_root_argument(parser)
    parser.set_defaults(handler=autograder_command)


def autograder_command(args: argparse.Namespace) -> int:
    """Build the zip and say what it holds."""
    from dlcc.course.autograder import build_autograder
    from dlcc.course.catalogue import find_root

    built = build_autograder(
        find_root(args.root),
        args.assignment,
        args.out,
        torch=args.torch,
        torch_index=args.torch_index,
    )
    print(f"wrote {built.path}: {built.files} files, {built.tests} graded tests")
    print(f"  setup.sh installs {built.torch} and the package; run_autograder grades with them")
    print("  upload it as the assignment's autograder on Gradescope (Ubuntu base image)")
    return 0
