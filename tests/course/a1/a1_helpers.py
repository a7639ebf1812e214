"""Helpers shared by the Assignment 1 graded tests (imported by name: this folder is on
sys.path). Nothing here uses a learner's solution region: the oracles and stand-ins are
PyTorch (autograd supplies every gradient), so each test grades only the region it names,
and the tests a learner reads do not spell out the NumPy they are to write.

When graded, the learner's code runs in a process of its own (`dlcc.course.remote`): the
learner's layers here are handles, arrays cross as copies. The helpers marked
`learner_side` run in that process, on the learner's objects (an optimiser over a model's
own arrays, in-place checks); their results are data like any other, checked here.
"""

from __future__ import annotations

import numpy as np
import torch

from dlcc.course.remote import is_remote, learner_side, on_learner
from dlcc.numpy_nn.module import Module, manual_seed


def seed(value: int) -> None:
    """Seed the library generator here and in the learner's process (each has its own)."""
    manual_seed(value)
    on_learner(manual_seed, value)


# ---- comparing arrays, with one-line messages ------------------------------------------
def check_array(what: str, actual, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-8):
    """Fail with one specific line unless ``actual`` matches ``expected`` in type, shape, values.

    ``what`` names the thing, e.g. "Linear.forward: output". The error is
    ``|actual - expected| / (atol + rtol * |expected|)``; the worst index is reported.
    """
    if not isinstance(actual, np.ndarray):
        raise AssertionError(
            f"{what}: a NumPy array of shape {expected.shape} expected, got {type(actual).__name__}"
        )
    if actual.shape != expected.shape:
        raise AssertionError(f"{what} shape {expected.shape} expected, got {actual.shape}")
    difference = np.abs(actual.astype(np.float64) - expected)
    scaled = difference / (atol + rtol * np.abs(expected))
    scaled = np.where(np.isnan(scaled), np.inf, scaled)
    if scaled.size and scaled.max() > 1.0:
        index = tuple(int(i) for i in np.unravel_index(np.argmax(scaled), scaled.shape))
        raise AssertionError(
            f"{what} differs from the expected value: max abs. error "
            f"{difference[index]:.1e} at index {index} (got {actual[index]:.6g}, "
            f"expected {expected[index]:.6g})"
        )


def check_dtype(what: str, actual: np.ndarray, dtype) -> None:
    if actual.dtype != np.dtype(dtype):
        raise AssertionError(
            f"{what} dtype {np.dtype(dtype)} expected (the input's), got {actual.dtype}; "
            f"a float64 array such as np.zeros(shape) needs dtype=x.dtype"
        )


def check_gradcheck(target, inputs, what: str, **options) -> None:
    """`dlcc.numpy_nn.gradcheck` of ``target`` on ``inputs``, failing with one line that
    names ``what`` (e.g. "Linear.backward") rather than the test's wrapper."""
    from dlcc.numpy_nn import gradcheck

    if is_remote(target):
        target = Mirror(target)
    label = type(target).__name__
    try:
        result = gradcheck(target, inputs, **options)
    except ValueError as error:  # e.g. backward returned None or the wrong shape
        message = str(error).replace(f"{label}.backward", what).replace("gradcheck: ", "")
        raise AssertionError(message.splitlines()[0]) from None
    if not result.ok:
        first = str(result).split(f"; {label}.backward")[0]  # the first of its messages
        raise AssertionError(first.replace(f"{label}.backward", what).splitlines()[0])


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same values as x, (N, C, H, W)-indexed, but stored NHWC: the layout the
    reference Conv2d and MaxPool2d return (a loop-based one returns plain NCHW)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


# ---- PyTorch as the oracle --------------------------------------------------------------
def to_torch(array: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy()


# ---- a Module whose forward is an oracle and whose backward is the learner's -------------
class OracleForward(Module):
    """Grade a layer's backward alone: forward comes from ``forward_fn`` (PyTorch or plain
    NumPy), backward from ``layer``. Parameters and grads are the layer's own arrays.

    ``forward_fn(x, params)`` returns the output; ``remember(layer, x, output)`` stores
    on the layer what its backward reads (e.g. ``layer.input = x``), as its forward would.
    When graded, ``layer`` lives in the learner's process: the parameters here are copies
    (the oracle's), and the grads are read back from the layer after each backward.
    """

    def __init__(self, layer: Module, forward_fn, remember):
        super().__init__()
        self.layer, self.forward_fn, self.remember = layer, forward_fn, remember
        self.params, self.grads = layer.params, layer.grads

    def forward(self, x: np.ndarray) -> np.ndarray:
        output = self.forward_fn(x, self.params)
        self.remember(self.layer, x, output)
        return output

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_in = self.layer.backward(grad_out)
        if is_remote(self.layer):
            for name, grad in self.layer.grads.items():
                self.grads[name][...] = grad
        return grad_in

    def zero_grad(self) -> None:
        super().zero_grad()
        if is_remote(self.layer):
            self.layer.zero_grad()


def remember_input(layer: Module, x: np.ndarray, output: np.ndarray) -> None:
    layer.input = x


class Mirror(Module):
    """A learner's module, as `gradcheck` needs it here: its parameters are copies in this
    process, which gradcheck perturbs and which are loaded into the learner's module before
    each forward; its grads are the learner's, read back after each backward (so a backward
    that overwrites instead of adding shows in the accumulation check)."""

    def __init__(self, module) -> None:
        super().__init__()
        self.module = module
        named = list(module.named_parameters())
        self.names = [name for name, _, _ in named]
        self.values = {name: np.array(param) for name, param, _ in named}
        self.gradients = {name: np.zeros_like(self.values[name]) for name in self.names}

    def named_parameters(self):
        return iter([(name, self.values[name], self.gradients[name]) for name in self.names])

    def parameters(self):
        return [(self.values[name], self.gradients[name]) for name in self.names]

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.names:
            load_parameters(self.module, self.values)
        return self.module.forward(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_in = self.module.backward(grad_out)
        for name, _, grad in self.module.named_parameters():
            self.gradients[name][...] = grad
        return grad_in

    def zero_grad(self) -> None:
        for grad in self.gradients.values():
            grad.fill(0)
        self.module.zero_grad()


@learner_side
def load_parameters(module: Module, values: dict) -> None:
    """Copy `values` into the module's own parameter arrays, in place."""
    for name, param, _ in module.named_parameters():
        param[...] = values[name]


# ---- on the learner's side: optimisers over the learner's own arrays -------------------
@learner_side
def described_without_torch():
    """describe_environment() in the learner's process as on a machine without PyTorch:
    None in sys.modules makes `import torch` raise ImportError."""
    import sys

    from dlcc.environment import describe_environment

    missing = object()
    saved = sys.modules.get("torch", missing)
    sys.modules["torch"] = None
    try:
        return describe_environment()
    finally:
        if saved is missing:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved


@learner_side
def sgd_for(model: Module, **hyper):
    """The learner's SGD over the learner model's own (param, grad) arrays."""
    from dlcc.numpy_nn import SGD

    return SGD(model.parameters(), **hyper)


@learner_side
def sgd_steps(params: list, grads_per_step: list, **hyper) -> dict:
    """Run the learner's SGD on `params` (copied there), one step per entry of
    `grads_per_step` (the gradients to set before it). Returns the parameters after each step,
    whether each stayed the same array (updated in place), the dtypes, and the gradients after
    the last step."""
    from dlcc.numpy_nn import SGD

    params = [np.array(p) for p in params]
    grads = [np.zeros_like(p) for p in params]
    same = list(params)
    optimizer = SGD(list(zip(params, grads, strict=True)), **hyper)
    after = []
    for step_grads in grads_per_step:
        for grad, value in zip(grads, step_grads, strict=True):
            grad[...] = value
        optimizer.step()
        after.append([p.copy() for p in params])
    return {
        "after": after,
        "in_place": [p is q for p, q in zip(params, same, strict=True)],
        "grads": [g.copy() for g in grads],
    }


@learner_side
def fill_grads(model: Module, value: float) -> list[int]:
    """Set every grad of the learner's model to `value`; the grad arrays' identities."""
    for _, grad in model.parameters():
        grad[...] = value
    return grad_identities(model)


@learner_side
def grad_identities(model: Module) -> list[int]:
    """The identities of the learner model's grad arrays (to see whether one was replaced)."""
    return [id(grad) for _, grad in model.parameters()]


# ---- a tiny model, loss and optimiser, for the training-loop tests -----------------------
class TwoWeights(Module):
    """Parameters only: a (3, 4) weight, a (3,) bias and a (2, 3, 2, 2) conv-like weight."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(2)
        self.add_param("weight", rng.standard_normal((3, 4)))
        self.add_param("bias", rng.standard_normal(3))
        self.conv = Module()
        self.conv.add_param("weight", rng.standard_normal((2, 3, 2, 2)))

    def children(self):
        return iter([("conv", self.conv)])


class SoftmaxRegression(Module):
    """logits = x.reshape(N, -1) @ weight.T + bias, computed by PyTorch (autograd gives the
    backward), so that no learner layer is needed. Records every batch it sees in ``seen``
    and every call in ``calls``."""

    def __init__(self, in_features: int, num_classes: int, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.add_param("weight", rng.normal(0, 0.1, (num_classes, in_features)))
        self.add_param("bias", np.zeros(num_classes))
        self.seen: list[np.ndarray] = []
        self.calls: list[str] = []

    def forward(self, x):
        self.seen.append(np.array(x))
        self.calls.append("model.forward")
        self.tensors = logits_tensors(x, self.params)
        return to_numpy(self.tensors[-1])

    def zero_grad(self):
        self.calls.append("model.zero_grad")
        super().zero_grad()

    def backward(self, grad_out):
        self.calls.append("model.backward")
        x, weight, bias, logits = self.tensors
        logits.backward(to_torch(grad_out))
        self.grads["weight"] += to_numpy(weight.grad)
        self.grads["bias"] += to_numpy(bias.grad)
        return to_numpy(x.grad).reshape(np.shape(grad_out)[0], -1)


def logits_tensors(x, params):
    """(x, weight, bias, logits) as torch tensors that track gradients."""
    x_t = to_torch(np.reshape(x, (len(x), -1)), requires_grad=True)
    weight = to_torch(params["weight"], requires_grad=True)
    bias = to_torch(params["bias"], requires_grad=True)
    return x_t, weight, bias, torch.nn.functional.linear(x_t, weight, bias)


class PlainCrossEntropy:
    """Mean softmax cross-entropy with the dlcc loss interface, computed by PyTorch."""

    def __init__(self, calls: list[str] | None = None):
        self.calls = calls if calls is not None else []

    def forward(self, logits, target):
        self.calls.append("loss.forward")
        self.logits = to_torch(logits, requires_grad=True)
        self.loss = torch.nn.functional.cross_entropy(self.logits, torch.as_tensor(target))
        return float(self.loss.detach())

    __call__ = forward

    def backward(self):
        self.calls.append("loss.backward")
        self.loss.backward()
        return to_numpy(self.logits.grad)


class PlainSGD:
    """p -= lr * g, with the dlcc optimiser interface. Records the grads it stepped with."""

    def __init__(self, params, lr: float, calls: list[str] | None = None):
        self.param_pairs, self.lr = list(params), lr
        self.calls = calls if calls is not None else []
        self.stepped_with: list[list[np.ndarray]] = []

    def zero_grad(self):
        self.calls.append("optimizer.zero_grad")
        for _, grad in self.param_pairs:
            grad.fill(0)

    def step(self):
        self.calls.append("optimizer.step")
        self.stepped_with.append([grad.copy() for _, grad in self.param_pairs])
        for param, grad in self.param_pairs:
            param -= self.lr * grad

    def state_dict(self):
        return {"lr": np.asarray(self.lr)}


def reference_train_step(model, loss_fn, optimizer, x_batch, y_batch, l2=0.0):
    """A train_step written out here, for tests that grade another region through `fit`."""
    optimizer.zero_grad()
    logits = model.forward(x_batch)
    loss = loss_fn.forward(logits, y_batch)
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss, logits


def blobs(n: int = 96, num_classes: int = 3, features: int = 4, seed: int = 0):
    """Separable Gaussian blobs as (N, 1, 1, features) float64 "images" and int labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    centres = rng.normal(0, 3, (num_classes, features))
    x = centres[y] + rng.normal(0, 1, (n, features))
    return x.reshape(n, 1, 1, features), y


# ---- the digits data, for the convergence tests -----------------------------------------
def digits():
    """sklearn's 8x8 digits from `dlcc.data`: train 1,257, val 180, test 360 (fixed)."""
    from dlcc.data import load_dataset

    return load_dataset("digits")
