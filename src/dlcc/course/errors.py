"""The course tools' one error type."""

from __future__ import annotations

from dlcc.errors import DlccError


class CourseError(DlccError):
    """An instructor or learner error in the course tools: a bad fence, a bad catalogue entry,
    a planned assignment, a missing root. The message names the file (and line) at fault."""
