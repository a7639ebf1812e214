"""The grading report: `GradeReport`, its human table, Gradescope's results.json, and
`validate_results`, which checks a dict against that format.

``results.json`` (``--json``) follows Gradescope's format:

- ``score``, ``max_score``: floats, the points earned and possible;
- ``execution_time``: seconds the grading took;
- ``output``: a short summary (what was graded, sandbox, total);
- ``stdout_visibility``: ``"visible"``;
- ``tests``: one object per graded test: ``name`` ("part | test id"), ``score``,
  ``max_score``, ``output`` (the one-line feedback), ``visibility`` (``"visible"`` for a public
  test, ``"after_published"`` for a hidden one) and ``status`` (``"passed"`` or ``"failed"``).

This module only presents what grading found; it runs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.course.catalogue import Assignment, GradedTest, format_points
from dlcc.course.errors import CourseError
from dlcc.course.outcome import SourceOrigin, TestOutcome, one_line
from dlcc.course.sandbox import Isolation

FEEDBACK_WIDTH = 200
VISIBILITY = {"public": "visible", "hidden": "after_published"}
GRADESCOPE_VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


@dataclass(frozen=True)
class TestResult:
    """One graded test from the catalogue and its outcome."""

    __test__ = False  # not a pytest test class, whatever its name

    test: GradedTest
    outcome: TestOutcome

    @property
    def score(self) -> float:
        return float(self.test.points) if self.outcome.passed else 0.0


@dataclass
class GradeReport:
    """Everything one grading run found; `table()` and `results_json()` present it."""

    assignment: Assignment
    root: Path  # the course root graded against
    submission: Path | None
    hidden: bool
    sources: list[SourceOrigin]
    results: list[TestResult]
    isolation: Isolation
    execution_time: float
    notes: list[str] = field(default_factory=list)
    work_folder: Path | None = None  # kept for inspection (--keep), else None

    @property
    def score(self) -> float:
        return sum(result.score for result in self.results)

    @property
    def max_score(self) -> float:
        return float(sum(result.test.points for result in self.results))

    @property
    def ungraded_hidden_points(self) -> float:
        return 0.0 if self.hidden else self.assignment.points("hidden")

    def summary_lines(self) -> list[str]:
        what = (
            f"submission {self.submission}"
            if self.submission
            else f"the package in {self.root / 'src'} as it is (no --submission)"
        )
        lines = [f"{self.assignment.id}: {self.assignment.title}", f"graded: {what}"]
        width = max(len(origin.source) for origin in self.sources)
        for origin in self.sources:
            text = origin.status.value + (f" ({origin.detail})" if origin.detail else "")
            lines.append(f"  {origin.source:<{width}}  {text}")
        lines.append(f"sandbox: {self.isolation.level}: {self.isolation.note}")
        lines.append(
            "learner's code: in a process of its own, apart from the tests, the reference and "
            "the report"
        )
        lines.extend(f"note: {note}" for note in self.notes)
        return lines

    def total_line(self) -> str:
        percent = 100.0 * self.score / self.max_score if self.max_score else 0.0
        text = (
            f"Total: {format_points(self.score)}/{format_points(self.max_score)} ({percent:.1f}%)"
        )
        if self.assignment.release_hidden_points:  # a release: they are not in it
            text += (
                f"; hidden tests ({format_points(self.assignment.release_hidden_points)} "
                "points) are graded after you submit"
            )
        elif self.ungraded_hidden_points:
            text += (
                f"; hidden tests ({format_points(self.ungraded_hidden_points)} points) not run, "
                "pass --hidden to include them"
            )
        return text

    def table(self) -> str:
        """The human report: sources, one line per test grouped by part, subtotals, total."""
        lines = self.summary_lines()
        name_width = max([len(r.test.test) for r in self.results] + [len("subtotal")])
        points = [f"{format_points(r.score)}/{format_points(r.test.points)}" for r in self.results]
        points_width = max([len(p) for p in points] + [len("points")])
        for part in _parts(self.results):
            in_part = [
                (r, p) for r, p in zip(self.results, points, strict=True) if r.test.part == part
            ]
            lines.append("")
            lines.append(f"{part}")
            for result, earned in in_part:
                feedback = one_line(result.outcome.feedback, FEEDBACK_WIDTH)
                lines.append(
                    f"  {result.test.test:<{name_width}}  {earned:>{points_width}}  {feedback}"
                )
            earned = sum(r.score for r, _ in in_part)
            possible = sum(r.test.points for r, _ in in_part)
            subtotal = f"{format_points(earned)}/{format_points(possible)}"
            lines.append(f"  {'subtotal':<{name_width}}  {subtotal:>{points_width}}")
        lines.extend(["", self.total_line()])
        return "\n".join(lines) + "\n"

    def results_json(self) -> dict:
        """Gradescope's results.json as a dict (see the module docstring)."""
        output = "\n".join([*self.summary_lines(), self.total_line()])
        return {
            "score": float(self.score),
            "max_score": float(self.max_score),
            "execution_time": round(self.execution_time, 2),
            "output": output,
            "stdout_visibility": "visible",
            "tests": [
                {
                    "name": f"{result.test.part} | {result.test.test}",
                    "score": result.score,
                    "max_score": float(result.test.points),
                    "output": result.outcome.feedback,
                    "visibility": VISIBILITY[result.test.visibility],
                    "status": "passed" if result.outcome.passed else "failed",
                }
                for result in self.results
            ],
        }

    def write_results_json(self, path: Path) -> None:
        """Validate `results_json()` and write it to `path`, atomically."""
        data = self.results_json()
        validate_results(data)
        write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def validate_results(results: dict) -> None:
    """Raise `CourseError` listing every way `results` departs from the results.json format."""
    problems = []

    def number(value) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not isinstance(results, dict):
        raise CourseError(f"results.json must be an object; got {type(results).__name__}")
    for key in ("score", "max_score", "execution_time"):
        if not number(results.get(key)):
            problems.append(f"{key} must be a number; got {results.get(key)!r}")
    if not isinstance(results.get("output"), str):
        problems.append("output must be a string")
    if results.get("stdout_visibility") not in GRADESCOPE_VISIBILITIES:
        problems.append(f"stdout_visibility must be one of {GRADESCOPE_VISIBILITIES}")
    tests = results.get("tests")
    if not isinstance(tests, list):
        problems.append("tests must be a list")
        tests = []
    total = 0.0
    for index, test in enumerate(tests):
        where = f"tests[{index}]"
        if not isinstance(test, dict):
            problems.append(f"{where} must be an object")
            continue
        for key in ("name", "output"):
            if not isinstance(test.get(key), str):
                problems.append(f"{where}.{key} must be a string")
        for key in ("score", "max_score"):
            if not number(test.get(key)):
                problems.append(f"{where}.{key} must be a number")
        if number(test.get("score")) and number(test.get("max_score")):
            if not 0 <= test["score"] <= test["max_score"]:
                problems.append(f"{where}.score must lie in [0, max_score]")
            total += test["score"]
        if test.get("visibility") not in GRADESCOPE_VISIBILITIES:
            problems.append(f"{where}.visibility must be one of {GRADESCOPE_VISIBILITIES}")
        if "status" in test and test["status"] not in ("passed", "failed"):
            problems.append(f"{where}.status must be 'passed' or 'failed'")
    if number(results.get("score")) and abs(results["score"] - total) > 1e-9:
        problems.append(f"score {results['score']} is not the sum of the tests' scores {total}")
    if problems:
        raise CourseError("results.json is not valid: " + "; ".join(problems))


def _parts(results: list[TestResult]) -> list[str]:
    """The parts in the order their first test appears."""
    parts: list[str] = []
    for result in results:
        if result.test.part not in parts:
            parts.append(result.test.part)
    return parts
