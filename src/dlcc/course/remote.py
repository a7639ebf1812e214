"""Calling the learner's code in another process: values cross as data, objects as handles.

The grader runs an assignment's tests in a *trusted* process (the tests, the reference, the
oracle, the report) and the learner's code in a *learner* process (`dlcc.course.learner`
starts it, in the sandbox). Tests are ordinary pytest tests: in the trusted process the
learner's modules are stand-ins whose attributes are `Remote` handles, so
``Linear(3, 4).forward(x)`` makes the layer in the learner's process, sends ``x`` there and
gets the output back. What crosses the boundary:

- **data, by value**: None, bool, int, float, complex, str, bytes, tuples, lists, dicts, sets,
  slices and ranges of data; NumPy arrays and scalars of numeric or bool dtype; torch tensors
  (with ``requires_grad`` and ``.grad``); NumPy and torch dtypes, torch devices. A copy: a test
  that changes an array it got back does not change the learner's.
- **handles, by reference**: every other object stays where it was made, and the other side
  gets a `Remote` that forwards attribute reads and writes, calls, ``[]``, ``len`` and
  iteration (nothing else: no arithmetic, no comparison, no ``__array__``: an oracle never
  computes with an object the learner's code controls).
- **functions, classes and modules** the trusted side sends by name (the learner's process
  imports its own copy); lambdas and local functions as handles.

Safety of the trusted side, against a learner process that sends whatever it likes:

- nothing is unpickled: messages are length-prefixed frames of JSON and raw buffers, read with
  a size limit (``DLCC_GRADE_MESSAGE_MB``, default 512), decoded with a depth limit, and array
  dtypes outside bool/int/float/complex are refused;
- the learner's process can reach only the trusted objects the tests handed it, and on those
  only public attributes, calls, ``[]``, ``len`` and iteration; and only objects of the tests'
  own modules or of ``dlcc`` (outside ``dlcc.course``) are handed out at all (`TrustedPolicy`);
- an exception from the learner's code is re-raised in the trusted process as a builtin
  exception of the same name, or as `LearnerError`: never by importing what it names.

`learner_side` marks a test helper to run on the learner's side (it builds objects that the
learner's code uses, e.g. a torch model that its training loop trains), and `on_learner` runs
any importable function there. Outside the grader both run the function in place, so the same
tests run under plain pytest too.

Standard library and NumPy; torch only where a torch value crosses (already imported).
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import types
import weakref
from collections.abc import Callable
from pathlib import Path, PurePath

import numpy as np

HEADER = struct.Struct(">QI")  # the frame's total length, the JSON header's length
DEFAULT_MESSAGE_MB = 512
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000  # items of one iteration sent back
ARRAY_KINDS = "biufc"
DATA_ATOMS = (type(None), bool, int, float, str)
_TORCH_DTYPES = (
    "float16 float32 float64 bfloat16 complex64 complex128 uint8 int8 int16 int32 int64 bool"
).split()

_active: Peer | None = None  # the connection to the other process, once there is one


class RemoteError(Exception):
    """The other process broke the protocol, or an object could not cross."""


class LearnerError(Exception):
    """An exception raised by the learner's code, of a type that cannot be re-created here.

    ``str(error)`` is "TypeName: message"; ``where`` is " (in layers.py:42)" or ""."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class LearnerStopped(LearnerError):
    """The learner's process died, or was stopped at the test's time limit."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def message_limit() -> int:
    value = os.environ.get("DLCC_GRADE_MESSAGE_MB", "").strip()
    megabytes = int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MESSAGE_MB
    return megabytes * 1024 * 1024


# ---- the wire format -----------------------------------------------------------------------
def _torch():
    return sys.modules.get("torch")


class _Encoder:
    """One message's values as JSON-able trees plus raw buffers."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.buffers: list[bytes] = []

    def buffer(self, data: bytes) -> int:
        self.buffers.append(bytes(data))
        return len(self.buffers) - 1

    def value(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise RemoteError(f"a value nested over {MAX_DEPTH} levels deep cannot cross")
        kind = type(value)
        if kind in DATA_ATOMS:
            return value
        if isinstance(value, np.generic) and value.dtype.kind in ARRAY_KINDS:
            return {"$": "npscalar", "dtype": value.dtype.str, "b": self.buffer(value.tobytes())}
        if isinstance(value, bool | int | float | str) and not isinstance(value, Remote):
            base = next(b for b in (bool, int, float, str) if isinstance(value, b))
            return base(value)  # a subclass (torch's version string, an IntEnum) as its base
        if isinstance(value, Remote):
            named = object.__getattribute__(value, "_named")
            if named is not None:
                return {"$": "named", "m": named[0], "q": named[1]}
            if object.__getattribute__(value, "_peer") is not self.peer:
                raise LearnerStopped(
                    "an object made by an earlier learner process (it stopped) was used"
                )
            return {
                "$": "ref",
                "side": self.peer.other,
                "id": object.__getattribute__(value, "_id"),
            }
        if kind in (bytes, bytearray):
            return {"$": "bytes", "b": self.buffer(value)}
        if kind is complex:
            return {"$": "complex", "v": [value.real, value.imag]}
        if kind in (list, tuple, set, frozenset) or (
            isinstance(value, tuple) and _torch() is not None and kind is _torch().Size
        ):
            name = kind.__name__ if kind in (list, tuple, set, frozenset) else "tuple"
            return {"$": name, "v": [self.value(item, depth + 1) for item in value]}
        if isinstance(value, dict) and kind.__module__ in ("builtins", "collections"):
            keys = [self.value(key, depth + 1) for key in value]
            return {"$": "dict", "k": keys, "v": [self.value(v, depth + 1) for v in value.values()]}
        if kind is slice:
            parts = [value.start, value.stop, value.step]
            return {"$": "slice", "v": [self.value(p, depth + 1) for p in parts]}
        if value is Ellipsis:
            return {"$": "ellipsis"}
        if kind is range:
            return {"$": "range", "v": [value.start, value.stop, value.step]}
        if isinstance(value, PurePath):
            return {"$": "path", "v": str(value)}
        if kind is types.SimpleNamespace:
            return {"$": "namespace", "v": self.value(vars(value), depth + 1)}
        if isinstance(value, np.ndarray) and value.dtype.kind in ARRAY_KINDS:
            array = np.ascontiguousarray(value)
            shape = list(array.shape)
            return {
                "$": "ndarray",
                "dtype": array.dtype.str,
                "shape": shape,
                "b": self.buffer(array.tobytes()),
            }
        if isinstance(value, np.generic) and value.dtype.kind in ARRAY_KINDS:
            return {"$": "npscalar", "dtype": value.dtype.str, "b": self.buffer(value.tobytes())}
        if kind is np.dtype or isinstance(value, np.dtype):
            if value.kind in ARRAY_KINDS:
                return {"$": "npdtype", "v": value.str}
        torch = _torch()
        if torch is not None:
            if (
                isinstance(value, torch.Tensor)
                and str(value.dtype).removeprefix("torch.") in _TORCH_DTYPES
            ):
                return self.tensor(value, depth)
            if (
                isinstance(value, torch.dtype)
                and str(value).removeprefix("torch.") in _TORCH_DTYPES
            ):
                return {"$": "tdtype", "v": str(value).removeprefix("torch.")}
            if isinstance(value, torch.device):
                return {"$": "tdevice", "v": str(value)}
        named = self.peer.by_name(value)
        if named is not None:
            return {"$": "name", "m": named[0], "q": named[1]}
        if self.peer.side == "trusted" and isinstance(value, types.GeneratorType):
            return self.value(list(value), depth)  # a test's generator crosses as its items
        return {"$": "ref", "side": self.peer.side, "id": self.peer.export(value)}

    def tensor(self, value, depth: int):
        torch = _torch()
        detached = value.detach().to("cpu").contiguous()
        if detached.dtype == torch.bfloat16:
            raw = detached.view(torch.int16).numpy().tobytes()
        else:
            raw = detached.numpy().tobytes() if detached.numel() else b""
        grad = value.grad if value.is_leaf and value.requires_grad else None
        return {
            "$": "tensor",
            "dtype": str(value.dtype).removeprefix("torch."),
            "shape": list(value.shape),
            "b": self.buffer(raw),
            "rg": bool(value.requires_grad),
            "param": isinstance(value, torch.nn.Parameter),
            "grad": None if grad is None else self.tensor(grad, depth + 1),
        }


class _Decoder:
    """The inverse of `_Encoder`, for values that may have been written by an attacker."""

    def __init__(self, peer: Peer, buffers: list[memoryview]) -> None:
        self.peer = peer
        self.buffers = buffers

    def buffer(self, index) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise RemoteError(f"a value names buffer {index!r}, which the message does not hold")
        return self.buffers[index]

    def value(self, tree, depth: int = 0):
        if depth > MAX_DEPTH:
            raise RemoteError(f"a value nested over {MAX_DEPTH} levels deep")
        if type(tree) in DATA_ATOMS:
            return tree
        if type(tree) is not dict or not isinstance(tree.get("$"), str):
            raise RemoteError(f"malformed value of type {type(tree).__name__}")
        tag = tree["$"]
        items = tree.get("v")
        if tag in ("list", "tuple", "set", "frozenset"):
            values = [self.value(item, depth + 1) for item in self._list(items)]
            if tag in ("set", "frozenset"):
                values = [self._hashable(v) for v in values]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](values)
        if tag == "dict":
            keys = [self._hashable(self.value(k, depth + 1)) for k in self._list(tree.get("k"))]
            values = [self.value(v, depth + 1) for v in self._list(items)]
            if len(keys) != len(values):
                raise RemoteError("a dict with unequal numbers of keys and values")
            return dict(zip(keys, values, strict=True))
        if tag == "bytes":
            return bytes(self.buffer(tree.get("b")))
        if tag == "complex":
            real, imaginary = self._list(items)
            return complex(float(real), float(imaginary))
        if tag == "slice":
            return slice(*[self.value(p, depth + 1) for p in self._list(items)][:3])
        if tag == "ellipsis":
            return Ellipsis
        if tag == "range":
            return range(*[int(p) for p in self._list(items)][:3])
        if tag == "ndarray":
            return self.array(tree)
        if tag == "path":
            return Path(str(items))
        if tag == "namespace":
            fields = self.value(items, depth + 1)
            if type(fields) is not dict or not all(type(k) is str for k in fields):
                raise RemoteError("malformed namespace")
            return types.SimpleNamespace(**fields)
        if tag == "npscalar":
            dtype = self.dtype(tree.get("dtype"))
            data = self.buffer(tree.get("b"))
            if len(data) != dtype.itemsize:
                raise RemoteError("a NumPy scalar of the wrong size")
            return np.frombuffer(data, dtype=dtype)[0]
        if tag == "npdtype":
            return self.dtype(items)
        if tag == "tensor":
            return self.tensor(tree, depth)
        if tag == "tdtype":
            return getattr(self.torch(), self.torch_dtype_name(items))
        if tag == "tdevice":
            return self.torch().device(str(items))
        if tag == "ref":
            return self.peer.resolve(tree.get("side"), tree.get("id"))
        if tag == "name":
            return self.peer.import_name(tree.get("m"), tree.get("q"))
        if tag == "named":  # a named handle sent back: what that name is now, there
            return self.peer.import_name(tree.get("m"), tree.get("q"))
        raise RemoteError(f"unknown value tag {tag!r}")

    @staticmethod
    def _list(items) -> list:
        if type(items) is not list:
            raise RemoteError("malformed value: a list expected")
        return items

    @staticmethod
    def _hashable(value):
        try:
            hash(value)
        except TypeError:
            raise RemoteError(f"an unhashable {type(value).__name__} as a key") from None
        return value

    @staticmethod
    def dtype(text) -> np.dtype:
        if type(text) is not str or len(text) > 8:
            raise RemoteError(f"malformed dtype {text!r}")
        try:
            dtype = np.dtype(text)
        except TypeError:
            raise RemoteError(f"unknown dtype {text!r}") from None
        if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype:
            raise RemoteError(f"dtype {text!r} may not cross (bool, int, float, complex only)")
        return dtype

    @staticmethod
    def shape(shape) -> tuple[int, ...]:
        if type(shape) is not list or len(shape) > 32:
            raise RemoteError("malformed array shape")
        if not all(type(n) is int and 0 <= n < 1 << 48 for n in shape):
            raise RemoteError(f"malformed array shape {shape!r}")
        return tuple(shape)

    def array(self, tree) -> np.ndarray:
        dtype = self.dtype(tree.get("dtype"))
        shape = self.shape(tree.get("shape"))
        data = self.buffer(tree.get("b"))
        if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise RemoteError(f"an array of shape {shape} and dtype {dtype} with {len(data)} bytes")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()

    def torch(self):
        torch = _torch()
        if torch is None:
            import torch  # a torch value crossed: the sender had torch, so this side needs it
        return torch

    @staticmethod
    def torch_dtype_name(name) -> str:
        if name not in _TORCH_DTYPES:
            raise RemoteError(f"torch dtype {name!r} may not cross")
        return name

    def tensor(self, tree, depth: int):
        torch = self.torch()
        dtype = getattr(torch, self.torch_dtype_name(tree.get("dtype")))
        shape = self.shape(tree.get("shape"))
        data = self.buffer(tree.get("b"))
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(data) != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise RemoteError(f"a tensor of shape {shape} and dtype {dtype} with {len(data)} bytes")
        if len(data) == 0:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
        if tree.get("param") is True:
            tensor = torch.nn.Parameter(tensor, requires_grad=tree.get("rg") is True)
        elif tree.get("rg") is True and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
        grad = tree.get("grad")
        if grad is not None and tensor.requires_grad:
            tensor.grad = self.tensor(grad, depth + 1)
        return tensor


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, count: int) -> bytes:
    chunks, left = [], count
    while left:
        chunk = os.read(fd, min(left, 1 << 24))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ---- one end of the connection -------------------------------------------------------------
class Peer:
    """One end of the connection: sends requests, serves the other side's, keeps exports.

    `side` is "trusted" or "learner". `policy` (trusted side) decides what the other side may
    do with the objects exported to it; `wait` (trusted side) is called before each read, to
    enforce time limits.
    """

    def __init__(self, read_fd: int, write_fd: int, side: str, policy=None, wait=None) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.side = side
        self.other = "learner" if side == "trusted" else "trusted"
        self.policy = policy
        self.wait = wait
        self.limit = message_limit()
        self.exports: dict[int, object] = {}
        self.export_ids: dict[int, int] = {}  # id(object) -> export id
        self.next_id = 1
        self.proxies: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.released: list[int] = []  # the other side's ids whose handles are gone here
        self.closed = False

    # -- exports and handles
    def export(self, value) -> int:
        if self.policy is not None:
            self.policy.check_export(value)
        key = id(value)
        if key in self.export_ids:
            return self.export_ids[key]
        number = self.next_id
        self.next_id += 1
        self.exports[number] = value
        self.export_ids[key] = number
        return number

    def forget_exports(self) -> None:
        """Drop every exported object (the trusted side, after each test)."""
        self.exports.clear()
        self.export_ids.clear()

    def resolve(self, side, number):
        if side == self.side:
            if type(number) is not int or number not in self.exports:
                raise RemoteError(
                    f"the {self.other} side used object #{number!r} of the {self.side} side, "
                    "which it does not hold (from an earlier test?)"
                )
            return self.exports[number]
        if side != self.other or type(number) is not int:
            raise RemoteError(f"malformed reference {side!r} #{number!r}")
        proxy = self.proxies.get(number)
        if proxy is None:
            if number in self.released:  # its old handle died, but the release is not sent yet
                self.released.remove(number)
            proxy = Remote._make(self, number)
            self.proxies[number] = proxy
        return proxy

    def by_name(self, value) -> tuple[str, str] | None:
        """(module, qualified name) for a function, class or module the other side can import
        itself; only the trusted side sends names (the learner's side never has them looked up)."""
        if self.side != "trusted":
            return None
        if isinstance(value, type(sys)):
            return value.__name__, ""
        if not isinstance(value, type) and not callable(value):
            return None
        module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
            return None
        if self.policy is not None and self.policy.is_learner_module(module):
            return module, qualname
        found = sys.modules.get(module)
        for part in qualname.split("."):
            found = getattr(found, part, None)
        return (module, qualname) if found is value else None

    def import_name(self, module, qualname):
        if self.side == "trusted":
            raise RemoteError("the learner's side may not name objects for the trusted side")
        found = importlib.import_module(str(module))
        for part in str(qualname).split(".") if qualname else []:
            found = getattr(found, part)
        return found

    # -- messages
    def send(self, message: dict, encoder: _Encoder | None = None) -> None:
        """Send `message`, whose values `encoder` has already encoded (a fresh one if None)."""
        encoder = encoder if encoder is not None else _Encoder(self)
        if self.released:
            message["release"], self.released = self.released, []
        sizes = [len(b) for b in encoder.buffers]
        header = json.dumps({**message, "sizes": sizes}, allow_nan=True).encode()
        total = HEADER.size + len(header) + sum(sizes)
        if total > self.limit:
            raise RemoteError(
                f"a message of {total / 2**20:.0f} MiB is over the {self.limit // 2**20} MiB limit"
            )
        frame = HEADER.pack(total, len(header)) + header + b"".join(encoder.buffers)
        try:
            _write_all(self.write_fd, frame)
        except (BrokenPipeError, ConnectionError):
            self.lost()

    def lost(self):
        """The other process is gone: raise `LearnerStopped` (the trusted side's manager may
        replace this to say why)."""
        self.closed = True
        raise LearnerStopped(f"the {self.other} process has stopped")

    def receive(self) -> tuple[dict, _Decoder]:
        if self.wait is not None:
            self.wait(self.read_fd)
        try:
            total, header_size = HEADER.unpack(_read_exactly(self.read_fd, HEADER.size))
            if total > self.limit or not HEADER.size <= header_size + HEADER.size <= total:
                self.closed = True  # the stream cannot be trusted to stay in step after this
                raise RemoteError(
                    f"the {self.other} process sent a message of {total / 2**20:.0f} MiB, over "
                    f"the {self.limit // 2**20} MiB limit"
                )
            body = memoryview(_read_exactly(self.read_fd, total - HEADER.size))
        except (EOFError, ConnectionError, struct.error):
            if self.side == "learner":
                raise EOFError from None
            self.lost()
        try:
            message = json.loads(bytes(body[:header_size]))
        except (ValueError, RecursionError):
            raise RemoteError(f"the {self.other} process sent a malformed message") from None
        if type(message) is not dict:
            raise RemoteError(f"the {self.other} process sent a malformed message")
        sizes = message.get("sizes", [])
        if type(sizes) is not list or not all(type(s) is int and s >= 0 for s in sizes):
            raise RemoteError("malformed buffer sizes")
        if header_size + sum(sizes) != len(body):
            raise RemoteError("the buffers do not add up to the message's length")
        buffers, offset = [], header_size
        for size in sizes:
            buffers.append(body[offset : offset + size])
            offset += size
        released = message.get("release")
        if self.side == "learner" and type(released) is list:
            for number in released:  # the trusted side keeps its exports until the test ends
                if type(number) is int and number in self.exports:
                    self.export_ids.pop(id(self.exports.pop(number)), None)
        return message, _Decoder(self, buffers)

    def request(self, op: str, target, *, key=None, args=(), kwargs=None, value=None):
        """Ask the other side to do `op` on `target` (a `Remote`, or a named target); serve its
        requests meanwhile; return its answer or raise its error."""
        if self.closed:
            self.lost()
        encoder = _Encoder(self)
        message = {"kind": "request", "op": op}
        message["target"] = target if type(target) is dict else encoder.value(target)
        if key is not None or op in ("getitem", "setitem"):
            message["key"] = key if op in ("getattr", "setattr", "delattr") else encoder.value(key)
        if op == "call":
            message["args"] = encoder.value(list(args))
            message["kwargs"] = encoder.value(dict(kwargs or {}))
        if op in ("setattr", "setitem"):
            message["value"] = encoder.value(value)
        self.send(message, encoder)
        while True:
            reply, decoder = self.receive()
            if reply.get("kind") == "request":
                self.serve(reply, decoder)
                continue
            if reply.get("kind") != "reply":
                raise RemoteError(f"the {self.other} process sent a message of unknown kind")
            if reply.get("ok") is True:
                return decoder.value(reply.get("value"))
            raise self.exception(reply.get("error"))

    def serve(self, message: dict, decoder: _Decoder) -> None:
        """Do what a request asks and send the reply (an error reply for any exception)."""
        try:
            op = message.get("op")
            target = self.target(message.get("target"), decoder)
            if self.policy is not None:
                self.policy.check_request(op, target, message)
            result = self.perform(op, target, message, decoder)
            encoder = _Encoder(self)
            reply = {"kind": "reply", "ok": True, "value": encoder.value(result)}
        except LearnerStopped:
            raise
        except BaseException as error:  # everything else goes back as an error reply
            if isinstance(error, KeyboardInterrupt) and self.side == "trusted":
                raise
            encoder, reply = None, {"kind": "reply", "ok": False, "error": self.describe(error)}
        self.send(reply, encoder)

    def target(self, tree, decoder: _Decoder):
        if type(tree) is dict and tree.get("$") == "named" and self.side == "learner":
            return self.import_name(tree.get("m"), tree.get("q"))
        return decoder.value(tree)

    @staticmethod
    def perform(op, target, message: dict, decoder: _Decoder):
        if op == "getattr":
            return getattr(target, str(message.get("key")))
        if op == "setattr":
            value = decoder.value(message.get("value"))
            _set_attribute(target, str(message.get("key")), value)
            return None
        if op == "delattr":
            _delete_attribute(target, str(message.get("key")))
            return None
        if op == "call":
            args = decoder.value(message.get("args"))
            kwargs = decoder.value(message.get("kwargs"))
            if type(args) is not list or type(kwargs) is not dict:
                raise RemoteError("malformed call")
            return target(*args, **{str(k): v for k, v in kwargs.items()})
        if op == "getitem":
            return target[decoder.value(message.get("key"))]
        if op == "setitem":
            target[decoder.value(message.get("key"))] = decoder.value(message.get("value"))
            return None
        if op == "len":
            return len(target)
        if op == "iter":
            items = []
            for item in target:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise RemoteError(f"an iteration of over {MAX_ITEMS} items")
            return items
        if op == "repr":
            return repr(target)[:2000]
        if op == "type":
            kind = type(target)
            return [kind.__module__, kind.__qualname__]
        raise RemoteError(f"unknown operation {op!r}")

    def describe(self, error: BaseException) -> dict:
        kind = type(error)
        where = getattr(error, "where", "") or _where(error)
        return {
            "module": kind.__module__,
            "type": kind.__qualname__,
            "message": str(error)[:4000],
            "where": str(where)[:200],
        }

    def exception(self, error) -> BaseException:
        """The exception to raise for an error reply from the other side."""
        if type(error) is not dict:
            return RemoteError(f"the {self.other} process sent a malformed error")
        module, name = str(error.get("module", "")), str(error.get("type", "Exception"))
        message, where = str(error.get("message", ""))[:4000], str(error.get("where", ""))[:200]
        if self.side == "learner":
            kind = _builtin_exception(module, name)
            if kind is None:
                try:
                    kind = self.import_name(module, name)
                except Exception:
                    kind = None
            if isinstance(kind, type) and issubclass(kind, BaseException):
                try:
                    return kind(message)
                except Exception:
                    pass
            return RemoteError(f"{name}: {message}")
        kind = _builtin_exception(module, name)
        if kind is not None and kind is not StopIteration:
            try:
                made = kind(message)
                made.where = where
                return made
            except Exception:
                pass
        if name == "SystemExit":
            return LearnerError(f"the code called sys.exit({message})", where)
        outcomes = {"Skipped": "skip", "XFailed": "xfail", "Exit": "exit", "Failed": "fail"}
        if module in ("_pytest.outcomes", "builtins") and name in outcomes:
            called = f"pytest.{outcomes[name]}()"
            return LearnerError(f"the submission's code raised {called}: {message}", where)
        text = f"{name}: {message}" if message else name
        return LearnerError(text, where)


_originals: dict = {}  # (module name, attribute) -> the module's own value, before a setattr


def _set_attribute(target, name: str, value) -> None:
    """setattr; on a module, remember the module's own value, so that setting it back to a
    handle of that same name (monkeypatch's undo) restores it."""
    if not isinstance(target, type(sys)):
        setattr(target, name, value)
        return
    key = (target.__name__, name)
    if key in _originals and value is getattr(target, name, None):
        setattr(target, name, _originals.pop(key))  # set back to "its name": the undo
        return
    if key not in _originals and hasattr(target, name):
        _originals[key] = getattr(target, name)
    setattr(target, name, value)


def _delete_attribute(target, name: str) -> None:
    """delattr; on a module whose attribute a setattr replaced, put the module's own value back
    (monkeypatch undoes a setattr on a module stand-in by deleting the name it set)."""
    key = (getattr(target, "__name__", None), name)
    if isinstance(target, type(sys)) and key in _originals:
        setattr(target, name, _originals.pop(key))
    else:
        delattr(target, name)


def _builtin_exception(module: str, name: str):
    if module != "builtins":
        return None
    import builtins

    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind
    return None


def _where(error: BaseException) -> str:
    """ " (in layers.py:42)": the innermost frame of the error's traceback in a dlcc file."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if os.sep + "dlcc" + os.sep in frame.filename and not frame.filename.endswith("remote.py"):
            return f" (in {os.path.basename(frame.filename)}:{frame.lineno})"
    return ""


# ---- handles ------------------------------------------------------------------------------
class Remote:
    """A handle to an object in the other process (see the module docstring for what it does)."""

    __slots__ = ("__weakref__", "_id", "_named", "_peer")

    @classmethod
    def _make(cls, peer: Peer, number: int | None, named: tuple[str, str] | None = None):
        handle = object.__new__(cls)
        object.__setattr__(handle, "_peer", peer)
        object.__setattr__(handle, "_id", number)
        object.__setattr__(handle, "_named", named)
        return handle

    def _target(self):
        named = object.__getattribute__(self, "_named")
        if named is not None:
            return {"$": "named", "m": named[0], "q": named[1]}
        return self

    def _ask(self, op: str, **fields):
        peer = object.__getattribute__(self, "_peer")
        if object.__getattribute__(self, "_named") is not None:
            peer = _active  # a name outlives a learner process: ask the current one
            if peer is None:
                raise RemoteError("no learner process is connected")
        return peer.request(op, self._target(), **fields)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's and pytest's probes of special names
        return self._ask("getattr", key=name)

    def __setattr__(self, name: str, value) -> None:
        self._ask("setattr", key=name, value=value)

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", key=name)

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=args, kwargs=kwargs)

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __setitem__(self, key, value) -> None:
        self._ask("setitem", key=key, value=value)

    def __len__(self) -> int:
        length = self._ask("len")
        if type(length) is not int or length < 0:
            raise RemoteError(f"len() of a learner's object gave {length!r}")
        return length

    def __iter__(self):
        items = self._ask("iter")
        if type(items) is not list:
            raise RemoteError("iterating a learner's object gave no list")
        return iter(items)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        named = object.__getattribute__(self, "_named")
        if named is not None:
            return f"<the learner's {named[0]}.{named[1]}>"
        try:
            _, name = self._ask("type")
        except Exception:
            return "<an object in the learner's process>"
        return f"<the learner's {str(name)[:80]} object>"

    def __del__(self) -> None:
        try:
            number = object.__getattribute__(self, "_id")
            peer = object.__getattribute__(self, "_peer")
        except AttributeError:
            return
        if number is not None and not peer.closed:
            peer.released.append(number)


def named(module: str, qualname: str) -> Remote:
    """A handle to ``module.qualname`` in the learner's process, looked up when first used."""
    if _active is None:
        raise RemoteError("no learner process is connected")
    return Remote._make(_active, None, (module, qualname))


def is_remote(value) -> bool:
    return isinstance(value, Remote)


# ---- where the learner's code runs: helpers for test authors ----------------------------
def connected() -> bool:
    """Whether this process is the trusted side of a grading (helpers then run remotely)."""
    return _active is not None and _active.side == "trusted"


def on_learner(function: Callable, *args, **kwargs):
    """``function(*args, **kwargs)`` in the learner's process when grading, else here.

    `function` must be importable there by its module and name: a function or class of the
    package or of a public test helper module (``a2_helpers.tiny_mlp``, ``torch.nn.Linear``).
    """
    if not connected():
        return function(*args, **kwargs)
    module, qualname = function.__module__, function.__qualname__
    if "<" in qualname:
        raise RemoteError(
            f"on_learner({qualname}): only a module-level function or class can run on the "
            "learner's side (move it to a public helper module)"
        )
    return _active.request(
        "call", {"$": "named", "m": module, "q": qualname}, args=args, kwargs=kwargs
    )


def learner_side(function: Callable) -> Callable:
    """Decorate a public test helper so that, when grading, it runs in the learner's process.

    Use it for what the learner's code must work on in its own process: objects it trains,
    mutates or calls back into (a torch model and its optimiser, for a training loop). The
    helper's arguments and result cross as any value does (data by value, objects as handles).
    """
    import functools

    @functools.wraps(function)
    def run(*args, **kwargs):
        if not connected() or _is_learner_process():
            return function(*args, **kwargs)
        return on_learner(function, *args, **kwargs)

    run.here = function  # the helper itself, run in the calling process (for an oracle's twin)
    return run


def _is_learner_process() -> bool:
    return _active is not None and _active.side == "learner"


def set_active(peer: Peer | None) -> None:
    global _active
    _active = peer


# ---- the learner's process ------------------------------------------------------------------
def serve_learner(read_fd: int, write_fd: int) -> int:
    """The learner process's main loop: serve the trusted side's requests until it hangs up."""
    peer = Peer(read_fd, write_fd, "learner")
    set_active(peer)
    for module in filter(None, os.environ.get("DLCC_GRADE_PRELOAD", "").split(",")):
        try:  # a module that hangs here is caught by the start-up limit; errors come later,
            importlib.import_module(module)  # from the test that uses it
        except BaseException:
            sys.modules.pop(module, None)
    peer.send({"kind": "ready", "pid": os.getpid()})
    while True:
        try:
            message, decoder = peer.receive()
        except EOFError:
            return 0
        if message.get("kind") != "request":
            return 3
        peer.serve(message, decoder)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "--serve":
        print("usage: python -m dlcc.course.remote --serve READ_FD WRITE_FD", file=sys.stderr)
        return 2
    return serve_learner(int(argv[1]), int(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
