"""The two models of Assignment 1, built from the library's layers.

Both take images (N, C, H, W) and return class logits (N, num_classes). Their layer
lists mirror the PyTorch models of later assignments, so a state_dict moves across.
"""

from __future__ import annotations

import numpy as np

from dlcc.numpy_nn.conv import Conv2d
from dlcc.numpy_nn.layers import Dropout, Flatten, Linear, ReLU, Sequential
from dlcc.numpy_nn.pooling import MaxPool2d


def mlp(
    input_shape: tuple[int, int, int],
    num_classes: int,
    hidden: tuple[int, ...] = (256, 128),
    dropout: float = 0.0,
    dtype=np.float32,
) -> Sequential:
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden layer -> Linear.

    input_shape is (C, H, W); e.g. (1, 28, 28) gives 784 inputs.
    """
    features = int(np.prod(input_shape))
    layers = [Flatten()]
    for width in hidden:
        layers += [Linear(features, width, dtype=dtype), ReLU()]
        if dropout > 0:
            layers.append(Dropout(dropout))
        features = width
    layers.append(Linear(features, num_classes, dtype=dtype))
    layers[1].needs_input_grad = False  # its input is data: skip that gradient
    return Sequential(*layers)


def cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: tuple[int, ...] = (32, 64),
    hidden: int = 128,
    dropout: float = 0.0,
    dtype=np.float32,
) -> Sequential:
    """[Conv 3x3 pad 1 -> MaxPool 2 -> ReLU] per entry of ``channels`` -> Flatten ->
    Linear(hidden) -> ReLU -> Dropout -> Linear(num_classes).

    With input (1, 28, 28) and the defaults this is the benchmark CNN:
    conv 1->32, pool to 14x14, conv 32->64, pool to 7x7, linear 3136->128->10.
    """
    in_channels, height, width = input_shape
    layers = []
    for out_channels in channels:
        if min(height, width) < 2:
            raise ValueError(
                f"cnn: {len(channels)} pooling stages need images of at least "
                f"{2 ** len(channels)}x{2 ** len(channels)}, got {input_shape[1]}x{input_shape[2]}"
            )
        # Pool before ReLU: the same function as ReLU then pool (max and max(., 0)
        # commute, gradients included), with the ReLU on a quarter of the pixels.
        layers += [
            Conv2d(in_channels, out_channels, 3, padding=1, dtype=dtype),
            MaxPool2d(2),
            ReLU(),
        ]
        in_channels, height, width = out_channels, height // 2, width // 2
    layers += [Flatten(), Linear(in_channels * height * width, hidden, dtype=dtype), ReLU()]
    if dropout > 0:
        layers.append(Dropout(dropout))
    layers.append(Linear(hidden, num_classes, dtype=dtype))
    layers[0].needs_input_grad = False  # its input is data: skip that gradient
    return Sequential(*layers)
