"""The grader's side of the events pipe: authentication, sequence, order and bounds."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from dlcc.course.channel import MAX_LINE_BYTES, EventChannel, Protocol, Rejected

KEY = b"k" * 64


def line(event: dict, key: bytes = KEY) -> bytes:
    text = json.dumps(event).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest().encode() + b" " + text + b"\n"


@pytest.fixture
def pipe():
    read, write = os.pipe()
    yield EventChannel(read, KEY), write
    os.close(write)
    os.close(read)


def test_good_events_come_through_before_a_forged_one(pipe):
    channel, write = pipe
    os.write(write, line({"event": "configured", "seq": 0}) + line({"event": "x", "seq": 1}, b"?"))
    assert channel.read() == [{"event": "configured", "seq": 0}]
    assert "not written by the grader's plugin" in str(channel.rejected)
    assert channel.read() == []


def test_a_replayed_event_is_rejected(pipe):
    channel, write = pipe
    os.write(write, line({"event": "configured", "seq": 0}) * 2)
    assert len(channel.read()) == 1
    assert "out of sequence" in str(channel.rejected)


def test_an_endless_line_is_cut_at_the_limit(pipe):
    channel, write = pipe
    os.set_blocking(write, False)
    sent = 0
    while sent <= MAX_LINE_BYTES + 1:
        try:
            sent += os.write(write, b"x" * 65536)
        except BlockingIOError:
            assert channel.read() == []
    channel.read()
    assert "over 1 MiB" in str(channel.rejected)
    assert channel.buffer == b""


def test_only_one_pair_per_selected_test_in_collection_order():
    protocol = Protocol({"a", "b"})
    for event in (
        {"event": "configured"},
        {"event": "collected", "nodeids": ["b", "c", "a"]},
        {"event": "start", "nodeid": "b"},
        {"event": "finish", "nodeid": "b"},
    ):
        protocol.check(event)
    for bad in (
        {"event": "finish", "nodeid": "a"},  # never started
        {"event": "start", "nodeid": "b"},  # a second pair
        {"event": "start", "nodeid": "c"},  # not selected
        {"event": "collected", "nodeids": []},
    ):
        with pytest.raises(Rejected):
            protocol.check(bad)
    protocol.check({"event": "start", "nodeid": "a"})
    protocol.check({"event": "finish", "nodeid": "a"})
    protocol.check({"event": "session_finish"})
    with pytest.raises(Rejected, match="after the session finished"):
        protocol.check({"event": "start", "nodeid": "a"})
