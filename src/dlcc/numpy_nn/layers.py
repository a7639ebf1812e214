"""Dense layers, embeddings, activations, dropout, flatten and the Sequential container.

Each class keeps its backward right below its forward. Shapes follow torch.nn.
"""

from __future__ import annotations

import math

import numpy as np

from dlcc.numpy_nn.functional import sum_rows
from dlcc.numpy_nn.module import BackwardBeforeForwardError, Module, check_dtype, default_rng


def uniform_init(shape: tuple[int, ...], fan_in: int, dtype: np.dtype) -> np.ndarray:
    """torch.nn's default init for Linear and Conv2d weights and biases.

    ``kaiming_uniform_(a=sqrt(5))`` reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return default_rng().uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """y = x @ weight.T + bias.

    Input (N, *, in_features); output (N, *, out_features).
    Parameters: weight (out_features, in_features), bias (out_features,).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.dtype = check_dtype(dtype)
        self.add_param("weight", uniform_init((out_features, in_features), in_features, self.dtype))
        if bias:
            self.add_param("bias", uniform_init((out_features,), in_features, self.dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape_ok = isinstance(x, np.ndarray) and x.ndim >= 2 and x.shape[-1] == self.in_features
        self.check_input(x, f"(N, {self.in_features})", shape_ok)
        self.input = x  # backward reads it
        # BEGIN SOLUTION Linear.forward: y = x @ weight.T + bias
        out = x @ self.params["weight"].T  # (N, *, out)
        if "bias" in self.params:
            out += self.params["bias"]
        return out
        # END SOLUTION
        # BEGIN PROMPT
        # x is (N, in_features); self.params["weight"] is (out_features, in_features) and
        # self.params["bias"] (out_features,), absent when the layer was built with bias=False.
        # Return y of shape (N, out_features) and x's dtype. One matrix product, no loops.
        # END PROMPT

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.require_forward("input")  # a clear error when forward has not run
        # BEGIN SOLUTION Linear.backward: add dL/dweight, dL/dbias to grads, return dL/dx
        x2d = self.input.reshape(-1, self.in_features)  # (M, in)
        grad2d = grad_out.reshape(-1, self.out_features)  # (M, out)
        self.grads["weight"] += grad2d.T @ x2d  # (out, in)
        if "bias" in self.params:
            self.grads["bias"] += sum_rows(grad2d)
        if not self.needs_input_grad:
            return None
        return grad_out @ self.params["weight"]  # (N, *, in)
        # END SOLUTION
        # BEGIN PROMPT
        # grad_out is dL/dy, (N, out_features); forward kept its input in self.input (N, in).
        # ADD (+=, do not assign) dL/dweight to self.grads["weight"] and dL/dbias to
        # self.grads["bias"] (when the layer has a bias): gradients accumulate, as in PyTorch.
        # Return dL/dx, shape (N, in_features). (You may return None when
        # self.needs_input_grad is False: the first layer's input is data.)
        # END PROMPT

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={'bias' in self.params}"
        )


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` is the vector of token ``i``.

    Input: integer indices of any shape (...), each in [0, num_embeddings).
    Output: (..., embedding_dim), ``weight[indices]``.
    Parameter: weight (num_embeddings, embedding_dim), initialised N(0, 1) as torch.

    The indices are not differentiable, so backward only fills ``grads["weight"]`` and
    returns None (an Embedding is a network's first layer). An index that occurs k times
    in the batch gets the sum of its k upstream gradient rows.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.dtype = check_dtype(dtype)
        weight = default_rng().standard_normal((num_embeddings, embedding_dim))
        self.add_param("weight", weight.astype(self.dtype))
        self.needs_input_grad = False  # indices have no gradient

    def forward(self, indices: np.ndarray) -> np.ndarray:
        if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
            received = (
                f"dtype {indices.dtype}"
                if isinstance(indices, np.ndarray)
                else type(indices).__name__
            )
            raise ValueError(
                f"{self!r}: expected an integer array of token indices, got {received}. "
                "Convert it with np.asarray(indices, dtype=np.int64)."
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            raise ValueError(
                f"{self!r}: indices must be in [0, num_embeddings) = [0, {self.num_embeddings}), "
                f"got values from {indices.min()} to {indices.max()}. Is the vocabulary larger "
                "than num_embeddings, or are there padding values such as -1?"
            )
        self.indices = indices  # backward reads it
        return self.params["weight"][indices]  # (..., embedding_dim), a copy

    def backward(self, grad_out: np.ndarray) -> None:
        indices = self.require_forward("indices")
        grad_rows = grad_out.reshape(-1, self.embedding_dim)  # one row per index
        # np.add.at adds every row, repeated indices included (``grad[indices] += rows``
        # would keep only one of the rows for an index that occurs twice).
        np.add.at(self.grads["weight"], indices.reshape(-1), grad_rows)
        return None

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class ReLU(Module):
    """max(x, 0), element-wise. Any shape; keeps the input's dtype and memory layout."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION ReLU.forward: max(x, 0), keeping the mask x > 0 in self.mask
        out = np.maximum(x, 0)
        # Where the gradient passes (0 at exactly 0, as in PyTorch). Keeping the mask is
        # cheaper than re-deriving it in backward: a bool multiply is the fastest pass.
        self.mask = out > 0
        return out
        # END SOLUTION
        # BEGIN PROMPT
        # Return max(x, 0) element-wise (same shape and dtype as x), and keep
        # self.mask = (x > 0): backward reads it.
        # END PROMPT

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.require_forward("mask")  # a clear error when forward has not run
        # BEGIN SOLUTION ReLU.backward: dL/dx from dL/dy and the kept mask
        return grad_out * self.mask
        # END SOLUTION
        # BEGIN PROMPT
        # self.mask is the boolean array (x > 0) that forward kept. The derivative of
        # max(x, 0) is 1 where x > 0 and 0 elsewhere (0 at x == 0 too, as in PyTorch).
        # END PROMPT


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x. Any shape."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # slope is 1 where x > 0, else negative_slope. (np.where is slow on the
        # channels-last views this library passes around; ufuncs are not.)
        self.slope = np.maximum(x > 0, self.negative_slope, dtype=x.dtype)
        return x * self.slope

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self.require_forward("slope")

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), element-wise. Any shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION Sigmoid.forward: 1 / (1 + exp(-x)) without overflow, kept in self.output
        # exp(-log(1 + exp(-x))) never overflows: logaddexp is computed stably.
        self.output = np.exp(-np.logaddexp(0, -x))
        return self.output
        # END SOLUTION
        # BEGIN PROMPT
        # Return sigmoid(x) element-wise, same shape and dtype as x, and keep it in
        # self.output: backward reads it. x may hold values such as -1000 or 1000;
        # np.exp(1000) overflows to inf. np.logaddexp(0, -x) = log(1 + exp(-x)) does not.
        # END PROMPT

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.require_forward("output")  # a clear error when forward has not run
        # BEGIN SOLUTION Sigmoid.backward: dL/dx from dL/dy and the kept output
        return grad_out * self.output * (1 - self.output)
        # END SOLUTION
        # BEGIN PROMPT
        # self.output is s = sigmoid(x), kept by forward. Write ds/dx in terms of s.
        # END PROMPT


class Tanh(Module):
    """tanh(x), element-wise. Any shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.output = np.tanh(x)
        return self.output

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        output = self.require_forward("output")
        return grad_out * (1 - output * output)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale
    the rest by 1/(1-p); in eval mode, the identity. Any shape.

    Masks come from the library generator, so `manual_seed` makes them reproducible.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        keep = default_rng().random(x.shape, dtype=np.float32) >= self.p
        self.mask = keep.astype(x.dtype) * (1.0 / (1.0 - self.p))
        return x * self.mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask = self.require_forward("mask")  # None in eval mode: the identity
        return grad_out if mask is None else grad_out * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Flatten all dimensions from ``start_dim`` on, in NCHW (PyTorch) order.

    Input (N, C, H, W); output (N, C*H*W). The order matters: it makes the next
    Linear layer's weight identical to PyTorch's.
    """

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(*x.shape[: self.start_dim], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self.require_forward("input_shape"))


class Sequential(Module):
    """Run modules in order; backward runs them in reverse.

    Children are named "0", "1", ... so state_dict keys match torch.nn.Sequential.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise ValueError(
                    f"Sequential: argument {index} is a {type(module).__name__}, expected a Module"
                )
        self.modules = list(modules)

    def children(self):
        return ((str(index), module) for index, module in enumerate(self.modules))

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        for index in reversed(range(len(self.modules))):
            try:
                grad_out = self.modules[index].backward(grad_out)
            except BackwardBeforeForwardError as error:
                raise BackwardBeforeForwardError(
                    f"Sequential.backward called before forward: layer {index} says: {error}"
                ) from None
            if grad_out is None:  # a first layer with needs_input_grad = False
                return None
        return grad_out

    def __getitem__(self, index: int) -> Module:
        return self.modules[index]

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def __repr__(self) -> str:
        lines = [f"  ({index}): {module!r}" for index, module in enumerate(self.modules)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
