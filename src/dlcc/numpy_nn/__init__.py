"""A from-scratch deep-learning library in NumPy, with torch.nn's names and shapes."""

from dlcc.numpy_nn.conv import Conv2d
from dlcc.numpy_nn.layers import (
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from dlcc.numpy_nn.module import Module, manual_seed
from dlcc.numpy_nn.normalization import BatchNorm1d, BatchNorm2d
from dlcc.numpy_nn.pooling import AvgPool2d, MaxPool2d

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "manual_seed",
]
