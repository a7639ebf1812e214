"""``dlcc course list | release aN --out DIR | notebook [aN] | grade aN | autograder aN``.

Each handler takes the parsed namespace and returns an exit status; user and instructor
errors raise `CourseError` (the CLI prints one line and exits with 2). Grading exits 0
whenever it completed, whatever the score.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlcc.course.catalogue import find_root, format_points, load_catalogue
from dlcc.course.class_commands import add_class_arguments, class_grade_command, register_autograder


def register(commands) -> None:
    """Add ``dlcc course list|release|grade|autograder`` to the top-level sub-parsers."""
    course = commands.add_parser("course", help="list, release and grade the assignments")
    course_commands = course.add_subparsers(dest="course_command", required=True)

    listing = course_commands.add_parser("list", help="each assignment, its status and points")
    add_root_argument(listing)
    listing.set_defaults(handler=list_command)

    release = course_commands.add_parser(
        "release", help="write the student starter of an assignment (solutions stubbed)"
    )
    release.add_argument("assignment", help="assignment id, e.g. a1 (see `dlcc course list`)")
    release.add_argument("--out", required=True, type=Path, help="folder to write (new or empty)")
    release.add_argument("--force", action="store_true", help="replace a non-empty --out")
    add_root_argument(release)
    release.set_defaults(handler=release_command)

    notebook = course_commands.add_parser(
        "notebook", help="write assignments' Jupyter notebooks, made from their handouts"
    )
    notebook.add_argument(
        "assignments", nargs="*", help="assignment ids, e.g. a1 (default: every ready one)"
    )
    notebook.add_argument(
        "--out", type=Path, default=Path("notebooks"), help="folder for aN.ipynb (notebooks)"
    )
    add_root_argument(notebook)
    notebook.set_defaults(handler=notebook_command)

    grade = course_commands.add_parser(
        "grade", help="grade a submission (default: the reference solution) and print a table"
    )
    grade.add_argument("assignment", help="assignment id, e.g. a1")
    grade.add_argument(
        "--submission",
        type=Path,
        default=None,
        help="folder with the learner's files (default: grade the reference solution)",
    )
    grade.add_argument(
        "--json", type=Path, default=None, help="also write Gradescope's results.json here"
    )
    grade.add_argument("--hidden", action="store_true", help="also run the hidden tests")
    grade.add_argument(
        "--keep", action="store_true", help="keep the grading work folder and print its path"
    )
    add_class_arguments(grade)
    add_root_argument(grade)
    grade.set_defaults(handler=grade_command)
    register_autograder(course_commands)


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        default=None,
        help="course root holding assignments/catalogue.toml (default: found above the "
        "installed dlcc, else above the current folder)",
    )


def list_command(args: argparse.Namespace) -> int:
    """Print each assignment: id, status, points public/hidden, test count, title."""
    catalogue = load_catalogue(find_root(args.root))
    rows = [("id", "status", "public", "hidden", "tests", "title")]
    for assignment in catalogue.assignments.values():
        rows.append(
            (
                assignment.id,
                assignment.status,
                format_points(assignment.points("public")),
                format_points(assignment.points("hidden")),
                str(len(assignment.tests)),
                assignment.title,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    print(f"catalogue: {catalogue.path}")
    return 0


def release_command(args: argparse.Namespace) -> int:
    """Write the starter and say what it holds."""
    from dlcc.course.release import release

    root = find_root(args.root)
    out = release(root, args.assignment, args.out, force=args.force)
    assignment = load_catalogue(out).get(args.assignment)
    print(f"released {assignment.id} ({assignment.title}) to {out}")
    print(f"  learner edits: {', '.join(assignment.sources)}")
    print(
        f"  public tests: {len(assignment.tests)} "
        f"({format_points(assignment.points('public'))} points) in {assignment.tests_dir}"
    )
    print(f"  try it: pip install -e {out} && dlcc course grade {assignment.id} --submission {out}")
    return 0


def notebook_command(args: argparse.Namespace) -> int:
    """Write OUT/aN.ipynb for each named (or each ready) assignment."""
    from dlcc.course.notebook import write_notebook

    root = find_root(args.root)
    catalogue = load_catalogue(root)
    ready = [item.id for item in catalogue.assignments.values() if item.status == "ready"]
    ids = args.assignments or ready
    assignments = [catalogue.get(assignment_id) for assignment_id in ids]  # all checked first
    for assignment in assignments:
        path = write_notebook(root, assignment, args.out / f"{assignment.id}.ipynb")
        print(f"wrote {path} (from {assignment.handout})")
    return 0


def grade_command(args: argparse.Namespace) -> int:
    """Grade, print the table, optionally write results.json; 0 whenever grading completed."""
    from dlcc.course.grade import grade

    root = find_root(args.root)
    if args.submissions is not None:
        return class_grade_command(args, root)
    report = grade(
        root,
        args.assignment,
        submission=args.submission,
        hidden=args.hidden,
        json_path=args.json,
        keep=args.keep,
    )
    print(report.table(), end="")
    if args.json is not None:
        print(f"wrote {args.json}")
    if report.work_folder is not None:
        print(f"work folder kept: {report.work_folder}")
    return 0
