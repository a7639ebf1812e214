"""Part 2, training the CNN: the learner's whole CNN pipeline on sklearn's 8x8 digits.

These tests need Conv2d and MaxPool2d (forward, backward) and the MLP pipeline's regions:
Linear, ReLU, CrossEntropyLoss, SGD.step, train_step. They are their own part of the grade.

Sized so that a Conv2d written with Python loops over the kernel offsets (NumPy doing the
batch and channel sums) trains in well under the test's time limit.
"""

from __future__ import annotations

import numpy as np
from a1_helpers import check_gradcheck, digits, seed, sgd_for

import dlcc.numpy_nn as nn
from dlcc.numpy_nn import models
from dlcc.numpy_nn.train import evaluate, fit

# The digits CNN of the handout: conv 1->8, pool to 4x4, conv 8->16, pool to 2x2, 64 -> 64 -> 10.
CHANNELS, HIDDEN = (8, 16), 64


def test_cnn_gradients_match_numerical():
    seed(0)
    model = models.cnn((1, 6, 6), 3, channels=(2, 3), hidden=5, dtype=np.float64)
    model[0].needs_input_grad = True  # check the input gradient of the first layer too
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    check_gradcheck(model, x, "CNN (Conv2d, ReLU, MaxPool2d, Linear)", sample=30)


def test_cnn_reaches_95_percent_on_digits():
    data = digits()
    seed(0)
    model = models.cnn((1, 8, 8), 10, channels=CHANNELS, hidden=HIDDEN)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = sgd_for(model, lr=0.02, momentum=0.9)
    history = fit(
        model,
        loss_fn,
        optimizer,
        (data.x_train, data.y_train),
        epochs=10,
        batch_size=32,
        progress=False,
        log=lambda message: None,
    )
    accuracy = evaluate(model, loss_fn, data.x_test, data.y_test).accuracy
    assert accuracy >= 0.95, (
        f"CNN on digits: test accuracy {accuracy:.3f} after 10 epochs, expected >= 0.95 "
        f"(train loss per epoch: {', '.join(f'{v:.3f}' for v in history.train_loss)})"
    )
