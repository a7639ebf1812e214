"""The `Module` base class: the one calling convention every layer follows.

A module owns three dicts of NumPy arrays, named as in `torch.nn`:

- ``params``: trainable parameters (``weight``, ``bias``, ...);
- ``grads``: one gradient array per parameter, same shape and dtype. ``backward``
  *adds* into it, as PyTorch accumulates into ``.grad``; ``zero_grad`` clears it;
- ``buffers``: state that is saved but not trained (``running_mean``, ...).

``forward(x)`` computes the output and keeps what ``backward`` needs.
``backward(grad_out)`` takes dLoss/dOutput (shape of the output) and returns
dLoss/dInput (shape of the input), filling ``grads`` on the way.

Arrays are never replaced, only written in place: the optimiser holds references
to ``params`` and ``grads``, and ``m.params["weight"][...] = w`` takes effect at
the next forward. Layers keep no cached copies of their parameters.

Skipping the input gradient: a network's first layer gets data as input, whose gradient
nobody needs. Setting ``needs_input_grad = False`` on a Linear or Conv2d lets its
backward skip that work and return None (PyTorch skips it likewise for inputs that do
not require grad); `Sequential` stops there. The models in `dlcc.numpy_nn.models` do
this for their first layer.

Dtype policy: a module with parameters is float32 by default (``dtype=np.float64``
makes a float64 module). An input whose dtype differs from the module's raises a
``ValueError`` that says how to cast; nothing is silently up- or down-cast.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlcc.errors import DlccError

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the generator used for weight initialisation and dropout masks.

    Like ``torch.manual_seed``: call it before building a model to make the
    initial weights (and every later dropout mask) reproducible.
    """
    global _rng
    _rng = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    """The library-wide generator that `manual_seed` resets."""
    return _rng


def check_dtype(dtype) -> np.dtype:
    """Validate a ``dtype=`` argument: float32 or float64 only."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(
            f"dtype must be np.float32 or np.float64, got {dtype}. "
            "Pass dtype=np.float32 (the default) or dtype=np.float64 (for gradient checks)."
        )
    return dtype


class BackwardBeforeForwardError(DlccError, RuntimeError):
    """``backward`` was called on a module or loss whose ``forward`` has not run.

    Backward reads what forward kept (the input, a mask, ...), so there is nothing to
    differentiate yet. Raised by `Module.require_forward` and by the losses.
    """


class Module:
    """Base class. Subclasses set ``params``/``buffers`` in ``__init__`` and
    implement ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training: bool = True
        self.needs_input_grad: bool = True

    # ---- the two methods every layer writes -------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def require_forward(self, *names: str):
        """What forward kept for backward: ``self.<name>`` for each name (one value, or a
        tuple for several). Backward calls it first, so that a backward before any forward
        raises `BackwardBeforeForwardError` naming the module, not a bare AttributeError.
        """
        kept = vars(self)
        for name in names:
            if name not in kept:
                raise BackwardBeforeForwardError(
                    f"{type(self).__name__}.backward called before forward: call forward(x) "
                    f"first (backward needs self.{name}, which forward keeps)."
                )
        return kept[names[0]] if len(names) == 1 else tuple(kept[name] for name in names)

    # ---- parameters -------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> None:
        """Register a parameter and its zeroed gradient array."""
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules as (name, module). Containers override this."""
        return iter(())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield (qualified name, parameter, gradient) for this module and below."""
        for prefix, module in self.named_modules():
            for name, param in module.params.items():
                yield (f"{prefix}.{name}" if prefix else name), param, module.grads[name]

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(parameter, gradient) pairs, the arrays an optimiser updates in place."""
        return [(param, grad) for _, param, grad in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(param.size for param, _ in self.parameters())

    def zero_grad(self) -> None:
        for _, grad in self.parameters():
            grad.fill(0)

    # ---- modes ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ---- state_dict, with torch.nn's keys ---------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers under torch's qualified names (copies)."""
        state = {}
        for prefix, module in self.named_modules():
            for name, array in {**module.params, **module.buffers}.items():
                state[f"{prefix}.{name}" if prefix else name] = array.copy()
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays (NumPy, or anything with ``.numpy()`` such as torch tensors)
        into the existing parameters and buffers, in place.

        Raises ``ValueError`` naming missing/unexpected keys and shape mismatches.
        """
        targets = {}
        for prefix, module in self.named_modules():
            for name, array in {**module.params, **module.buffers}.items():
                targets[f"{prefix}.{name}" if prefix else name] = array
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: keys do not match. "
                f"missing={missing} unexpected={unexpected}. "
                "Was the state_dict saved from the same architecture?"
            )
        for key, target in targets.items():
            if key not in state:
                continue
            value = state[key]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{key}' has shape {value.shape}, "
                    f"expected {target.shape}."
                )
            target[...] = value

    # ---- input validation shared by layers ---------------------------------------
    def check_input(self, x: np.ndarray, expected: str, shape_ok: bool | None = None) -> None:
        """Raise a ValueError naming this module if ``x`` is not what it expects.

        ``expected`` is a human-readable shape such as ``"(N, 3, H, W)"``;
        ``shape_ok`` is the caller's verdict on ``x.shape`` (evaluated only for arrays).
        """
        if not isinstance(x, np.ndarray):
            raise ValueError(
                f"{self!r}: expected a NumPy array of shape {expected}, got {type(x).__name__}. "
                "Convert it with np.asarray(x)."
            )
        if shape_ok is False:
            raise ValueError(f"{self!r}: expected input of shape {expected}, got {x.shape}.")
        dtype = getattr(self, "dtype", None)
        if dtype is not None and x.dtype != dtype:
            hint = f"Cast the input with x.astype(np.{dtype})"
            if x.dtype.kind == "f":
                hint += f", or build the model with dtype=np.{x.dtype}"
            raise ValueError(f"{self!r}: expected input dtype {dtype}, got {x.dtype}. {hint}.")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
