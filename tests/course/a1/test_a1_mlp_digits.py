"""Part 1, training the MLP: the learner's whole MLP pipeline on sklearn's 8x8 digits.

These tests need several regions at once: Linear and ReLU (forward, backward),
CrossEntropyLoss (forward, backward), SGD.step and train_step; the overfit test also
fit's overfit_one_batch branch. They are their own part of the grade.
"""

from __future__ import annotations

from a1_helpers import digits, seed, sgd_for

import dlcc.numpy_nn as nn
from dlcc.numpy_nn import models
from dlcc.numpy_nn.train import evaluate, fit

# The digits MLP of the handout: 64 -> 64 -> 10.
HIDDEN = (64,)


def quiet():
    return dict(progress=False, log=lambda message: None)


def test_mlp_overfits_one_batch():
    data = digits()
    seed(0)
    model = models.mlp((1, 8, 8), 10, hidden=HIDDEN)
    optimizer = sgd_for(model, lr=0.05, momentum=0.9)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        (data.x_train, data.y_train),
        epochs=60,
        batch_size=32,
        overfit_one_batch=True,
        **quiet(),
    )
    assert history.train_accuracy[-1] == 1.0 and history.train_loss[-1] < 0.05, (
        f"MLP, overfitting one batch of 32 digits for 60 steps: final loss "
        f"{history.train_loss[-1]:.3f} and accuracy {history.train_accuracy[-1]:.3f}, "
        "expected < 0.05 and 1.0"
    )


def test_mlp_reaches_95_percent_on_digits():
    data = digits()
    seed(0)
    model = models.mlp((1, 8, 8), 10, hidden=HIDDEN)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = sgd_for(model, lr=0.05, momentum=0.9)
    history = fit(
        model, loss_fn, optimizer, (data.x_train, data.y_train), epochs=10, batch_size=32, **quiet()
    )
    accuracy = evaluate(model, loss_fn, data.x_test, data.y_test).accuracy
    assert accuracy >= 0.95, (
        f"MLP on digits: test accuracy {accuracy:.3f} after 10 epochs, expected >= 0.95 "
        f"(train loss per epoch: {', '.join(f'{v:.3f}' for v in history.train_loss)})"
    )
