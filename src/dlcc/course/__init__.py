"""The course mechanism: catalogue, solution fences, release of starters, sandboxed grading.

- `catalogue`: ``assignments/catalogue.toml``, validated; finding the course root.
- `fences`: the solution-region grammar; stubbing a reference file for learners.
- `release`: ``dlcc course release``: the self-contained student starter.
- `grade`, `sandbox`, `pytest_plugin`, `sandbox_init`: ``dlcc course grade``: pytest in a
  limited subprocess, per-test time-outs and crash recovery, the table and results.json.
- `commands`: the thin CLI.

Nothing here imports what it grades (``numpy_nn``, ``models``, torch): grading happens in a
subprocess on a copy of the package.
"""

from dlcc.course.errors import CourseError

__all__ = ["CourseError"]
