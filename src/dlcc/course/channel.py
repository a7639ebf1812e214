"""The grader's side of the events pipe: bounded reads, authenticated lines, one order.

A grading process reports through `dlcc.course.pytest_plugin`: one line per event, the hex
HMAC-SHA256 of its JSON under a per-run key, a space, the JSON (with ``seq`` 0, 1, 2, ...).
`EventChannel` reads the pipe without blocking and never holds more than `MAX_LINE_BYTES` of an
unfinished line; `Protocol` accepts events only in the order an honest pytest run sends them:
``configured``, collection errors, ``collected`` once, then one ``start``/``finish`` pair per
selected test in collection order, then ``session_finish``. Anything else (an over-long line,
a bad MAC, a gap in ``seq``, a second pair, a pair out of order) raises `Rejected`: the caller
kills the process and the test it was running earns nothing. `EventChannel.read` hands over the
good events before a bad one, then keeps the `Rejected` in ``rejected``.

`OutputTail` keeps the last `TAIL_BYTES` of the process's own output, for error messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

MAX_LINE_BYTES = 1 << 20
READ_BYTES = 1 << 20  # one read
READS_PER_POLL = 8  # at most this many reads per call, so a flood cannot stall the watcher
TAIL_BYTES = 64 * 1024


class Rejected(Exception):
    """The events did not come from an honest run of the reporting plugin."""


def _read_available(fd: int) -> tuple[bytes, bool]:
    """What can be read now without blocking (bounded), and whether the pipe reached its end."""
    chunks = []
    for _ in range(READS_PER_POLL):
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return b"".join(chunks), False
        except OSError:
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
    return b"".join(chunks), False


class EventChannel:
    """Reads and authenticates the events pipe (`fd`, non-blocking) under `key`."""

    def __init__(self, fd: int, key: bytes) -> None:
        self.fd = fd
        self.key = key
        self.buffer = b""
        self.seq = 0
        self.rejected: Rejected | None = None
        os.set_blocking(fd, False)

    def read(self) -> list[dict]:
        """The complete events that arrived since the last call, authenticated and parsed, up
        to the first bad one; after a bad one, `rejected` says why and nothing more is read."""
        if self.rejected is not None:
            return []
        data, _ = _read_available(self.fd)
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        events = []
        try:
            for line in lines:
                if len(line) > MAX_LINE_BYTES:
                    raise Rejected(f"an event line over {MAX_LINE_BYTES // (1 << 20)} MiB")
                events.append(self._verify(line))
            if len(self.buffer) > MAX_LINE_BYTES:
                raise Rejected(f"an event line over {MAX_LINE_BYTES // (1 << 20)} MiB")
        except Rejected as error:
            self.rejected, self.buffer = error, b""
        return events

    def _verify(self, line: bytes) -> dict:
        mac, _, text = line.partition(b" ")
        wanted = hmac.new(self.key, text, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(mac, wanted):
            raise Rejected("an event line not written by the grader's plugin")
        try:
            event = json.loads(text)
        except ValueError as error:
            raise Rejected(f"an unreadable event line ({error})") from None
        if not isinstance(event, dict) or event.get("seq") != self.seq:
            raise Rejected("an event out of sequence (replayed or duplicated)")
        self.seq += 1
        return event

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class Protocol:
    """The order of an honest run's events, for the tests `selected` (node ids)."""

    def __init__(self, selected: set[str]) -> None:
        self.selected = selected
        self.order: list[str] | None = None  # the selected tests in collection order
        self.position = 0
        self.current: str | None = None
        self.configured = False
        self.finished = False

    def check(self, event: dict) -> None:
        """Raise `Rejected` unless `event` may come next."""
        kind = event.get("event")
        nodeid = event.get("nodeid")
        if self.finished:
            raise Rejected(f"a {kind!r} event after the session finished")
        if kind == "configured":
            if self.configured or self.order is not None:
                raise Rejected("a second 'configured' event")
            self.configured = True
        elif kind == "collect_error":
            if self.order is not None:
                raise Rejected("a collection error after collection")
        elif kind == "collected":
            if self.order is not None:
                raise Rejected("a second 'collected' event")
            nodeids = event.get("nodeids")
            if not isinstance(nodeids, list):
                raise Rejected("a 'collected' event without its node ids")
            self.order = [str(n) for n in nodeids if str(n) in self.selected]
        elif kind == "start":
            expected = None
            if self.order is not None and self.position < len(self.order):
                expected = self.order[self.position]
            if self.current is not None or nodeid != expected:
                raise Rejected(f"a start of {nodeid!r} where {expected!r} was next")
            self.current = nodeid
        elif kind == "finish":
            if nodeid != self.current or nodeid is None:
                raise Rejected(f"a finish of {nodeid!r} while {self.current!r} was running")
            self.current = None
            self.position += 1
        elif kind == "session_finish":
            if self.current is not None:
                raise Rejected("the session finished while a test was running")
            self.finished = True
        else:
            raise Rejected(f"an unknown event {kind!r}")


class OutputTail:
    """Drains a process's output pipe (`fd`, non-blocking), keeping only its last bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = b""
        self.total = 0
        os.set_blocking(fd, False)

    def read(self) -> None:
        data, _ = _read_available(self.fd)
        self.total += len(data)
        self.data = (self.data + data)[-TAIL_BYTES:]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
