"""Every layer's analytic gradients against central differences (float64).

The second oracle beside PyTorch: it needs nothing but the layer's own forward.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlcc.numpy_nn as nn

F64 = np.float64

LAYERS = {
    "conv": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, dtype=F64), (2, 2, 7, 6)),
    "conv_rect": (lambda: nn.Conv2d(1, 2, (2, 3), stride=(1, 2), dtype=F64), (1, 1, 5, 7)),
    "linear": (lambda: nn.Linear(5, 4, dtype=F64), (3, 5)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(3, dtype=F64), (4, 3, 3, 2)),
    "batchnorm1d": (lambda: nn.BatchNorm1d(4, dtype=F64), (6, 4)),
    "maxpool": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 5)),
    "avgpool": (lambda: nn.AvgPool2d(2), (2, 3, 6, 4)),
    "relu": (nn.ReLU, (3, 7)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (3, 7)),
    "sigmoid": (nn.Sigmoid, (3, 7)),
    "tanh": (nn.Tanh, (3, 7)),
    "flatten": (nn.Flatten, (2, 3, 2, 2)),
    "sequential": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, dtype=F64),
            nn.BatchNorm2d(4, dtype=F64),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16, 3, dtype=F64),
        ),
        (3, 1, 4, 4),
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradcheck_passes_for_every_layer(name):
    nn.manual_seed(0)
    build, shape = LAYERS[name]
    x = np.random.default_rng(1).standard_normal(shape)
    # Keep inputs away from the kinks of ReLU and max, where the derivative is undefined.
    x += np.sign(x) * 0.05
    result = nn.gradcheck(build(), x)
    assert result.ok, str(result)
    assert result.max_rel_error < 1e-5


def test_gradcheck_of_a_dropout_layer_uses_one_fixed_mask():
    nn.manual_seed(0)
    result = nn.gradcheck(nn.Dropout(0.4), np.random.default_rng(0).standard_normal((4, 6)))
    assert result.ok, str(result)


@pytest.mark.parametrize(
    "loss,target",
    [
        (nn.CrossEntropyLoss(label_smoothing=0.1), np.array([0, 2, 1, 2])),
        (nn.MSELoss(), np.random.default_rng(2).standard_normal((4, 3))),
        (nn.BCEWithLogitsLoss(), np.random.default_rng(3).integers(0, 2, (4, 3)).astype(F64)),
    ],
)
def test_gradcheck_passes_for_every_loss(loss, target):
    logits = np.random.default_rng(4).standard_normal((4, 3))
    result = nn.gradcheck(loss, (logits, target))
    assert result.ok, str(result)
