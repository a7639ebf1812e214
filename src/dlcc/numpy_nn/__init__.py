"""A from-scratch deep-learning library in NumPy, with torch.nn's names and shapes.

import dlcc.numpy_nn as nn
model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
loss_fn, optimizer = nn.CrossEntropyLoss(), nn.SGD(model.parameters(), lr=0.1)
loss = loss_fn(model(x), y)          # x (N, 1, 28, 28) float32, y (N,) int
model.backward(loss_fn.backward())   # fills every module's .grads
optimizer.step()
"""

from dlcc.numpy_nn.conv import Conv2d
from dlcc.numpy_nn.gradcheck import GradcheckResult, gradcheck
from dlcc.numpy_nn.layers import (
    Dropout,
    Embedding,
    Flatten,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from dlcc.numpy_nn.losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    log_softmax,
    softmax,
)
from dlcc.numpy_nn.module import BackwardBeforeForwardError, Module, manual_seed
from dlcc.numpy_nn.normalization import BatchNorm1d, BatchNorm2d
from dlcc.numpy_nn.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm
from dlcc.numpy_nn.pooling import AvgPool2d, MaxPool2d
from dlcc.numpy_nn.recurrent import GRU, LSTM, RNN
from dlcc.numpy_nn.schedules import CosineWithWarmup, OneCycleLR, StepLR
from dlcc.numpy_nn.sequence import CharLSTM, fit_tbptt
from dlcc.numpy_nn.train import evaluate, fit

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "SGD",
    "Adam",
    "AdamW",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BackwardBeforeForwardError",
    "BatchNorm1d",
    "BatchNorm2d",
    "CharLSTM",
    "Conv2d",
    "CosineWithWarmup",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GradcheckResult",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "OneCycleLR",
    "RMSprop",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StepLR",
    "Tanh",
    "clip_grad_norm",
    "evaluate",
    "fit",
    "fit_tbptt",
    "gradcheck",
    "log_softmax",
    "manual_seed",
    "softmax",
]
