"""The doctor's report: `Check` (one line), `DoctorReport` (all of them) and the table."""

from __future__ import annotations

import re
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dlcc import __version__

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")


@dataclass
class Check:
    """One line of the report.

    Attributes:
        name: what was checked, e.g. ``python``, ``gpu cuda:0``, ``gemm torch cpu``.
        status: ``ok`` | ``warn`` (works, but slower or less than it could) | ``fail`` (the
            course cannot run until it is fixed).
        value: what was found, one line for a person.
        hint: what to do about a warn or fail; empty when ok.
        section: the table heading it is printed under.
        details: machine-readable numbers behind `value` (GFLOP/s, GiB, versions).
    """

    name: str
    status: Status
    value: str
    hint: str = ""
    section: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class DoctorReport:
    """Every check run by `run_doctor`, in the order of the table.

    Attributes:
        checks: the report's lines.
        smoke: whether the smoke tests and GEMM timings ran.
        devices: the devices they ran on (``cpu``, ``cuda:0``, ``mps``).
        dlcc_version: the version of dlcc that wrote it.
    """

    checks: list[Check] = field(default_factory=list)
    smoke: bool = True
    devices: list[str] = field(default_factory=list)
    dlcc_version: str = __version__

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return all(check.status != "fail" for check in self.checks)

    @property
    def status(self) -> Status:
        """The worst status of any check."""
        return max((check.status for check in self.checks), key=STATUSES.index, default="ok")

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in STATUSES}

    def exit_status(self) -> int:
        """0 when the course can run here, 1 when a check failed."""
        return 0 if self.ok else 1

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError naming the ones there are otherwise."""
        for check in self.checks:
            if check.name == name:
                return check
        names = ", ".join(check.name for check in self.checks)
        raise KeyError(f"no check named {name!r} in this report; it has: {names}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``dlcc_version``, ``ok``, ``status``, ``counts``, ``smoke``, ``devices``,
        ``checks`` (each with ``name``, ``status``, ``value``, ``hint``, ``section``,
        ``details``)."""
        return {
            "dlcc_version": self.dlcc_version,
            "ok": self.ok,
            "status": self.status,
            "counts": self.counts(),
            "smoke": self.smoke,
            "devices": list(self.devices),
            "checks": [asdict(check) for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoctorReport:
        """The inverse of `to_dict` (the derived ``ok``, ``status`` and ``counts`` are ignored)."""
        return cls(
            checks=[Check(**check) for check in data["checks"]],
            smoke=bool(data.get("smoke", True)),
            devices=list(data.get("devices", [])),
            dlcc_version=str(data.get("dlcc_version", "")),
        )


STATUS_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


def summary_line(report: DoctorReport) -> str:
    counts = report.counts()
    warnings_text = f"{counts['warn']} warning{'s' * (counts['warn'] != 1)}"
    if report.ok:
        tail = ": the course runs here" + (" (see the fixes above)" if counts["warn"] else "")
        return f"ok, {warnings_text}{tail}"
    failed = ", ".join(check.name for check in report.checks if check.status == "fail")
    return (
        f"FAIL: {counts['fail']} failed ({failed}), {warnings_text}; "
        "fix the failures above, then rerun `dlcc doctor`"
    )


def _wrap_hint(text: str, indent: str, width: int) -> list[str]:
    """`text` wrapped to `width`, never inside a `command`, so commands copy-paste whole."""
    glue = "\x00"  # stands for a space inside backticks while wrapping
    text = re.sub(r"`[^`]*`", lambda span: span.group(0).replace(" ", glue), text)
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "     ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace(glue, " ") for line in lines]


def format_table(report: DoctorReport, width: int = 100) -> str:
    """The report as a table: a heading per section, one line per check, its fix below it."""
    name_width = max((len(check.name) for check in report.checks), default=4)
    indent = " " * (2 + 4 + 2 + name_width + 2)  # status, name, spacing: the value's column
    lines = [f"dlcc doctor {report.dlcc_version}"]
    section = None
    for check in report.checks:
        if check.section != section:
            section = check.section
            lines += ["", section or "other"]
        lines.append(
            f"  {STATUS_LABELS[check.status]:<4}  {check.name:<{name_width}}  {check.value}"
        )
        if check.hint:
            lines += _wrap_hint(f"fix: {check.hint}", indent, max(width, len(indent) + 40))
    lines += ["", summary_line(report)]
    return "\n".join(lines)
