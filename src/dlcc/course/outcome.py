"""The grader's vocabulary: what happened to one test (`TestOutcome`, `Status`) and where one
graded source came from (`SourceOrigin`, `SourceStatus`).

A leaf: standard library only. `supervise` makes the outcomes from the test processes' events,
`workdir` makes the origins while it fills the work folder, and `report` presents both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    """How one graded test ended; only `PASSED` earns its points."""

    PASSED = "passed"
    FAILED = "failed"  # the test's body raised: an assertion, an exception, a sys.exit
    ERROR = "error"  # its set-up or teardown failed, or the plugin sent no outcome we know
    SKIPPED = "skipped"  # skipped or xfailed
    TIMED_OUT = "timed out"  # over its own limit, or the grading's overall limit ran out
    CRASHED = "crashed"  # the test process died while running it
    NOT_RUN = "not run"  # never started: not collected, import hang, time ran out, ...

    @classmethod
    def from_event(cls, outcome: object) -> Status:
        """The status for a ``finish`` event's ``outcome`` (see `dlcc.course.pytest_plugin`):
        passed, failed, error, skipped, timed_out or crashed; anything else is an error."""
        if outcome in ("passed", "failed", "error", "skipped"):
            return cls(outcome)
        if outcome == "timed_out":
            return cls.TIMED_OUT
        if outcome == "crashed":
            return cls.CRASHED
        return cls.ERROR


@dataclass(frozen=True)
class TestOutcome:
    """The outcome of one graded test: its status, one line of feedback, its run time."""

    __test__ = False  # not a pytest test class, whatever its name

    status: Status
    feedback: str  # one line for the learner: "passed", "timed out after 1.5 s", ...
    duration: float | None = None  # seconds the test ran; None when it did not finish

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


class SourceStatus(Enum):
    """Which copy of an assignment source was graded."""

    REFERENCE = "reference"  # no submission: the instructor's own solution
    SUBMITTED = "submitted"  # the learner's file
    NOT_SUBMITTED = "not submitted"  # none (or none usable) found: the release's stub


@dataclass(frozen=True)
class SourceOrigin:
    """Where the graded copy of one assignment source came from."""

    source: str  # root-relative, e.g. "src/dlcc/numpy_nn/layers.py"
    status: SourceStatus
    detail: str = ""  # the submitted file's path in the submission, or why it was not taken


def one_line(text: str, width: int) -> str:
    """`text` on one line (whitespace runs become one space), cut to `width` with "..."."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
