"""The boundary between the trusted test process and the learner's (`dlcc.course.remote`,
`dlcc.course.learner`): what crosses as data, what the trusted side refuses to decode, and
what the learner's process may do with the trusted objects handed to it."""

from __future__ import annotations

import json
import os
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from dlcc.course import remote
from dlcc.course.learner import TrustedPolicy
from dlcc.course.remote import Peer, RemoteError, _Decoder, _Encoder

HERE = str(Path(__file__).resolve().parent)


def trusted_peer() -> Peer:
    policy = TrustedPolicy({"dlcc.toy.ops"}, {"dlcc.toy.ops"}, [HERE])
    return Peer(-1, -1, "trusted", policy)


def round_trip(value, sender: Peer | None = None, receiver: Peer | None = None):
    sender = sender or Peer(-1, -1, "learner")
    receiver = receiver or trusted_peer()
    encoder = _Encoder(sender)
    tree = json.loads(json.dumps(encoder.value(value)))
    return _Decoder(receiver, [memoryview(b) for b in encoder.buffers]).value(tree)


def test_data_crosses_by_value_with_its_types():
    value = {
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.float64(2.5),
        "ints": (1, 2, [3, None, True]),
        "text": "é",
        "bytes": b"\x00\x01",
        "complex": 1 + 2j,
        "path": Path("/a/b"),
        "slice": slice(1, None, 2),
        "namespace": types.SimpleNamespace(a=1),
        "tensor": torch.arange(4.0).requires_grad_(),
        "dtype": torch.float16,
        3: {frozenset({1, 2})},
    }
    got = round_trip(value)
    assert got["array"].dtype == np.float32 and got["array"].tolist() == value["array"].tolist()
    assert type(got["scalar"]) is np.float64 and got["scalar"] == 2.5
    assert got["ints"] == (1, 2, [3, None, True])
    assert got["text"] == "é" and got["bytes"] == b"\x00\x01" and got["complex"] == 1 + 2j
    assert got["path"] == Path("/a/b") and got["slice"] == slice(1, None, 2)
    assert got["namespace"].a == 1
    assert got["tensor"].requires_grad and torch.equal(got["tensor"].detach(), torch.arange(4.0))
    assert got["dtype"] is torch.float16 and got[3] == {frozenset({1, 2})}
    got["array"][0, 0] = 99  # a copy: the sender's array is unchanged
    assert value["array"][0, 0] == 0


def test_a_tensors_grad_crosses_with_it():
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad = torch.full((3,), 2.0)
    got = round_trip(parameter)
    assert isinstance(got, torch.nn.Parameter) and torch.equal(got.grad, torch.full((3,), 2.0))


def test_other_objects_cross_as_handles_that_do_no_arithmetic():
    learner = Peer(-1, -1, "learner")
    got = round_trip(object(), sender=learner)
    assert remote.is_remote(got)
    for operation in (lambda h: h + 1, lambda h: np.asarray(h) * 2, lambda h: h < 1):
        with pytest.raises(TypeError):
            operation(got)
    assert (got == 0) is False and got != got.__class__  # identity only: no request is made


def frame(header: dict, buffers: list[bytes]) -> bytes:
    text = json.dumps({**header, "sizes": [len(b) for b in buffers]}).encode()
    total = struct.calcsize(">QI") + len(text) + sum(map(len, buffers))
    return struct.pack(">QI", total, len(text)) + text + b"".join(buffers)


@pytest.mark.parametrize(
    "tree, buffers, message",
    [
        ({"$": "ndarray", "dtype": "|O", "shape": [1], "b": 0}, [b"x" * 8], "may not cross"),
        ({"$": "ndarray", "dtype": "<f8", "shape": [2], "b": 0}, [b"x" * 8], "with 8 bytes"),
        ({"$": "ndarray", "dtype": "<f8", "shape": [-1], "b": 0}, [b""], "malformed array"),
        ({"$": "name", "m": "os", "q": "system"}, [], "may not name objects"),
        ({"$": "ref", "side": "trusted", "id": 7}, [], "does not hold"),
        ({"$": "pickle", "v": "..."}, [], "unknown value tag"),
        ({"$": "dict", "k": [{"$": "list", "v": []}], "v": [1]}, [], "unhashable"),
    ],
)
def test_the_trusted_side_refuses_what_it_cannot_decode_safely(tree, buffers, message):
    decoder = _Decoder(trusted_peer(), [memoryview(b) for b in buffers])
    with pytest.raises(RemoteError, match=message):
        decoder.value(tree)


def test_deep_nesting_is_refused():
    tree = 1
    for _ in range(remote.MAX_DEPTH + 5):
        tree = {"$": "list", "v": [tree]}
    with pytest.raises(RemoteError, match="levels deep"):
        _Decoder(trusted_peer(), []).value(tree)


def test_a_message_over_the_limit_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setenv("DLCC_GRADE_MESSAGE_MB", "1")
    read, write = os.pipe()
    try:
        peer = Peer(read, -1, "trusted", None)
        os.write(write, struct.pack(">QI", 2**40, 10))  # announces a TiB; nothing follows
        with pytest.raises(RemoteError, match="over the 1 MiB limit"):
            peer.receive()
        assert peer.closed
    finally:
        os.close(read)
        os.close(write)


def helper_function():
    return 1


class HelperStandIn:
    def step(self):
        return 2


def test_the_policy_hands_out_only_the_tests_own_objects():
    policy = TrustedPolicy(set(), {"dlcc.numpy_nn.layers"}, [HERE])
    sys.modules.setdefault(__name__, sys.modules[__name__])
    policy.check_export(helper_function)
    policy.check_export(HelperStandIn())
    policy.check_export(HelperStandIn().step)
    for refused in (os, os.system, torch.nn.Linear(2, 2), open, print):
        with pytest.raises(RemoteError, match="cannot be handed to the learner's code"):
            policy.check_export(refused)


def test_the_policy_allows_only_public_attributes_calls_and_iteration():
    policy = TrustedPolicy(set(), set(), [HERE])
    stand_in = HelperStandIn()
    policy.check_request("getattr", stand_in, {"key": "step"})
    policy.check_request("call", stand_in.step, {})
    for name in ("__class__", "__dict__", "_private", "__globals__"):
        with pytest.raises(AttributeError, match="only public attributes"):
            policy.check_request("getattr", stand_in, {"key": name})
    for op in ("setattr", "setitem", "delattr"):
        with pytest.raises(RemoteError, match="may not"):
            policy.check_request(op, stand_in, {"key": "x"})


def test_an_exception_from_the_learner_is_never_imported_by_its_name():
    peer = trusted_peer()
    error = peer.exception({"module": "os", "type": "system", "message": "rm", "where": ""})
    assert isinstance(error, remote.LearnerError) and str(error) == "system: rm"
    skipped = peer.exception({"module": "_pytest.outcomes", "type": "Skipped", "message": "x"})
    assert "raised pytest.skip()" in str(skipped)
    value_error = peer.exception({"module": "builtins", "type": "ValueError", "message": "bad"})
    assert type(value_error) is ValueError


def test_learner_side_helpers_run_in_place_outside_a_grading():
    @remote.learner_side
    def double(x):
        return 2 * x

    assert not remote.connected()
    assert double(3) == 6 and double.here(4) == 8
    assert remote.on_learner(len, [1, 2]) == 2
