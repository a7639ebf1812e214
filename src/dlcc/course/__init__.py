"""The course mechanism: catalogue, solution fences, release of starters, sandboxed grading.

- `catalogue`: ``assignments/catalogue.toml``, validated; finding the course root.
- `fences`: the solution-region grammar; stubbing a reference file for learners.
- `release`: ``dlcc course release``: the self-contained student starter.
- ``dlcc course grade``, one concern a module:
  - `grade`: orchestration only (check, build, run, report, clean up);
  - `workdir`: the work folder: the package with the learner's files overlaid, the tests;
  - `supervise`: pytest in subprocesses, per-test time-outs, crash recovery, the events;
  - `sandbox`, `sandbox_init`: the subprocess's limits and namespaces;
  - `pytest_plugin`: runs inside that subprocess and writes the events;
  - `outcome`: the typed values: a test's `Status` and `TestOutcome`, a `SourceOrigin`;
  - `report`: the table, Gradescope's results.json and its validation.
- `commands`: the thin CLI.

Nothing here imports what it grades (``numpy_nn``, ``models``, torch): grading happens in a
subprocess on a copy of the package.
"""

from dlcc.course.errors import CourseError

__all__ = ["CourseError"]
