"""The course's multilayer perceptron for images, in PyTorch.

Flatten -> [Linear -> ReLU -> Dropout] per hidden layer -> Linear.

The layer list is the one of `dlcc.numpy_nn.models.mlp`, in the same order and with the
same default init (PyTorch's), so a state_dict trained in NumPy loads here unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlcc.models.common import ModelError, dropout_probability, positive_int, positive_ints


class MLP(nn.Sequential):
    """A fully connected classifier for images.

    Args:
        in_shape: (C, H, W) of one image, e.g. (1, 28, 28), or the number of input features.
        num_classes: number of output logits.
        hidden: width of each hidden layer.
        dropout: drop probability after each hidden ReLU; 0 leaves the Dropout layers out.

    Input (N, C, H, W) (or any (N, ...) with C*H*W values per sample); output (N, num_classes).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int] | int,
        num_classes: int,
        hidden: tuple[int, ...] = (512, 256),
        dropout: float = 0.0,
    ):
        in_shape = (in_shape,) if isinstance(in_shape, int) else in_shape
        in_features = math.prod(positive_ints(in_shape, "MLP in_shape"))
        num_classes = positive_int(num_classes, "MLP num_classes")
        empty = isinstance(hidden, list | tuple) and not hidden  # () is logistic regression
        hidden = () if empty else positive_ints(hidden, "MLP hidden")
        dropout = dropout_probability(dropout, "MLP dropout")

        layers: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for width in hidden:
            layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            features = width
        layers.append(nn.Linear(features, num_classes))
        super().__init__(*layers)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        if torch.jit.is_tracing():  # the example input fixes the shapes; checks only warn
            return super().forward(x)
        is_tensor = isinstance(x, torch.Tensor)
        if not is_tensor or x.dim() < 2 or math.prod(x.shape[1:]) != self.in_features:
            received = tuple(x.shape) if is_tensor else type(x).__name__
            raise ModelError(
                f"MLP: expected a batch (N, ...) with {self.in_features} values per sample, "
                f"received {received}. Add a batch axis with x.unsqueeze(0) for one image, or "
                "build the model with the in_shape of your images."
            )
        if not x.is_floating_point():
            raise ModelError(
                f"MLP: expected floating-point input, received dtype {x.dtype}. "
                "Convert with x.float() (and scale uint8 pixels to [0, 1])."
            )
        return super().forward(x)  # (N, num_classes)
