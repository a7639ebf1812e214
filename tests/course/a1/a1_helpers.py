"""Helpers shared by the Assignment 1 graded tests (imported by name: this folder is on
sys.path). Nothing here uses a learner's solution region: the oracles and stand-ins are
PyTorch (autograd supplies every gradient), so each test grades only the region it names,
and the tests a learner reads do not spell out the NumPy they are to write.
"""

from __future__ import annotations

import numpy as np
import torch

from dlcc.numpy_nn.module import Module


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
        return self.layer.backward(grad_out)


def remember_input(layer: Module, x: np.ndarray, output: np.ndarray) -> None:
    layer.input = x


# ---- a tiny model, loss and optimiser, for the training-loop tests -----------------------
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
