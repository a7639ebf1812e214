"""Batch normalisation over the channel axis (axis 1), as in torch.nn.BatchNorm1d/2d."""

from __future__ import annotations

import numpy as np

from dlcc.numpy_nn.module import Module, check_dtype


class _BatchNorm(Module):
    """Normalise each channel with batch statistics (training) or running ones (eval).

    y = (x - mean) / sqrt(var + eps) * weight + bias.
    Running statistics follow PyTorch: ``running = (1 - momentum) * running +
    momentum * batch``, with the *unbiased* batch variance.
    Parameters: weight (C,), bias (C,); buffers: running_mean (C,), running_var (C,),
    num_batches_tracked ().
    """

    allowed_ndims: tuple[int, ...] = ()
    layout = ""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.dtype = check_dtype(dtype)
        self.add_param("weight", np.ones(num_features, dtype=self.dtype))
        self.add_param("bias", np.zeros(num_features, dtype=self.dtype))
        self.buffers["running_mean"] = np.zeros(num_features, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=self.dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _per_channel(self, vector: np.ndarray, ndim: int) -> np.ndarray:
        """(C,) -> (1, C, 1, ...) so it broadcasts against an input of ``ndim`` dims."""
        return vector.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape_ok = (
            isinstance(x, np.ndarray)
            and x.ndim in self.allowed_ndims
            and x.shape[1] == self.num_features
        )
        self.check_input(x, self.layout.replace("C", str(self.num_features)), shape_ok)
        axes = (0, *range(2, x.ndim))  # every axis but the channel axis
        count = x.size // self.num_features
        if self.training:
            if count < 2:
                raise ValueError(
                    f"{self!r}: training needs more than one value per channel, got input "
                    f"{x.shape}. Use a batch size above 1, or call .eval()."
                )
            mean = x.mean(axis=axes)  # (C,)
            centered = x - self._per_channel(mean, x.ndim)
            var = np.mean(centered * centered, axis=axes)  # biased: used to normalise
            self.buffers["num_batches_tracked"] += 1
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1 - self.momentum
            running_mean += self.momentum * mean
            running_var *= 1 - self.momentum
            running_var += (self.momentum * count / (count - 1)) * var
        else:
            centered = x - self._per_channel(self.buffers["running_mean"], x.ndim)
            var = self.buffers["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        normalized = centered * self._per_channel(inv_std, x.ndim)
        self.cache = (normalized, inv_std, axes, count, self.training)
        weight = self._per_channel(self.params["weight"], x.ndim)
        return normalized * weight + self._per_channel(self.params["bias"], x.ndim)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        normalized, inv_std, axes, count, was_training = self.require_forward("cache")
        ndim = grad_out.ndim
        grad_weight = np.sum(grad_out * normalized, axis=axes)  # (C,)
        grad_bias = grad_out.sum(axis=axes)  # (C,)
        self.grads["weight"] += grad_weight
        self.grads["bias"] += grad_bias
        scale = self._per_channel(self.params["weight"] * inv_std, ndim)  # (1, C, 1, ...)
        if not was_training:  # running statistics are constants
            return grad_out * scale
        # d/dx of batch-normalised output: remove the gradient's mean and its
        # projection on the normalised input (both come through mean and var).
        grad_mean = self._per_channel(grad_bias / count, ndim)
        grad_proj = self._per_channel(grad_weight / count, ndim)
        return (grad_out - grad_mean - normalized * grad_proj) * scale

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L); output the same shape."""

    allowed_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W); output the same shape."""

    allowed_ndims = (4,)
    layout = "(N, C, H, W)"
