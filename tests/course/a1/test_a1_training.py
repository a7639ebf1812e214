"""Part 1: the training step, L2 regularisation and the overfit-one-batch run
(`dlcc.numpy_nn.train`).

The model, loss and optimiser here are small stand-ins written in the helpers (softmax
regression, plain cross-entropy, plain SGD) that record what happens to them, so these
tests grade the training code alone, not the learner's layers.
"""

from __future__ import annotations

import numpy as np
import torch
from a1_helpers import (
    PlainCrossEntropy,
    PlainSGD,
    SoftmaxRegression,
    TwoWeights,
    blobs,
    check_array,
    fill_grads,
    grad_identities,
    logits_tensors,
    reference_train_step,
    to_numpy,
)

from dlcc.course.remote import on_learner
from dlcc.numpy_nn import train


def stand_ins(features=4, classes=3, lr=0.5, seed=0):
    model = SoftmaxRegression(features, classes, seed=seed)
    calls = model.calls
    return model, PlainCrossEntropy(calls), PlainSGD(model.parameters(), lr, calls), calls


def data_loss_and_gradient(model, x, y):
    """Loss, logits, dLoss/dweight and dLoss/dbias of the mean cross-entropy, by PyTorch."""
    _, weight, bias, logits = logits_tensors(x, model.params)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
    loss.backward()
    return float(loss.detach()), to_numpy(logits), to_numpy(weight.grad), to_numpy(bias.grad)


def test_train_step_order_and_update():
    x, y = blobs(12)
    model, loss_fn, optimizer, calls = stand_ins()
    model.grads["weight"][...] = 5.0  # stale grads from an earlier step
    expected_loss, expected_logits, grad_weight, grad_bias = data_loss_and_gradient(model, x, y)

    result = train.train_step(model, loss_fn, optimizer, x, y)

    assert isinstance(result, tuple) and len(result) == 2, (
        f"train_step: (loss, logits) expected, got {type(result).__name__}"
    )
    loss, logits = result
    # model.zero_grad() clears the same arrays as optimizer.zero_grad().
    calls = ["optimizer.zero_grad" if call == "model.zero_grad" else call for call in calls]
    expected_order = [
        "optimizer.zero_grad",
        "model.forward",
        "loss.forward",
        "loss.backward",
        "model.backward",
        "optimizer.step",
    ]
    assert calls == expected_order, (
        f"train_step: calls {' -> '.join(calls)}; expected {' -> '.join(expected_order)}"
    )
    assert abs(float(loss) - expected_loss) < 1e-9, (
        f"train_step: returned loss {loss} expected {expected_loss} (the batch's loss)"
    )
    check_array("train_step: returned logits", logits, expected_logits)
    stepped_grad_weight, stepped_grad_bias = optimizer.stepped_with[0]
    check_array("train_step: weight grad at optimizer.step", stepped_grad_weight, grad_weight)
    check_array("train_step: bias grad at optimizer.step", stepped_grad_bias, grad_bias)


def test_train_step_applies_l2(monkeypatch):
    def add_l2_penalty(model, l2):  # a stand-in, so this test does not need that region
        penalty = 0.0
        weights = [(p, g) for name, p, g in model.named_parameters() if name.endswith("weight")]
        for param, grad in weights:
            grad += l2 * param
            penalty += 0.5 * l2 * float(np.sum(param * param))
        return penalty

    monkeypatch.setattr(train, "add_l2_penalty", add_l2_penalty)
    x, y = blobs(10, seed=1)
    model, loss_fn, optimizer, _ = stand_ins(seed=1)
    weight = model.params["weight"].copy()
    _, _, grad_weight, grad_bias = data_loss_and_gradient(model, x, y)
    train.train_step(model, loss_fn, optimizer, x, y, l2=0.1)
    stepped_grad_weight, stepped_grad_bias = optimizer.stepped_with[0]
    check_array(
        "train_step(l2=0.1): weight grad at optimizer.step (data + L2 gradient)",
        stepped_grad_weight,
        grad_weight + 0.1 * weight,
    )
    check_array(
        "train_step(l2=0.1): bias grad at optimizer.step (biases get no L2 term)",
        stepped_grad_bias,
        grad_bias,
    )


def test_add_l2_penalty():
    model = on_learner(TwoWeights)
    identities = fill_grads(model, 1.0)
    weights = [model.params["weight"].copy(), model.conv.params["weight"].copy()]
    l2 = 0.3
    penalty = train.add_l2_penalty(model, l2)
    expected = 0.5 * l2 * sum(float(np.sum(w * w)) for w in weights)
    assert penalty is not None and abs(float(penalty) - expected) < 1e-9, (
        f"add_l2_penalty: returned {penalty}, expected l2/2 * sum ||W||^2 = {expected:.6g}"
    )
    assert grad_identities(model) == identities, (
        "add_l2_penalty: a grad array was replaced; add to it in place (grad += ...)"
    )
    check_array('add_l2_penalty: grads["weight"]', model.grads["weight"], 1.0 + l2 * weights[0])
    check_array(
        'add_l2_penalty: grads of the conv "weight"',
        model.conv.grads["weight"],
        1.0 + l2 * weights[1],
    )
    check_array(
        'add_l2_penalty: grads["bias"] (biases are not penalised)',
        model.grads["bias"],
        np.ones(3),
    )


def test_overfit_one_batch(monkeypatch):
    monkeypatch.setattr(train, "train_step", reference_train_step)
    x, y = blobs(64, seed=3)
    x_val, y_val = blobs(16, seed=4)
    model, loss_fn, optimizer, _ = stand_ins(lr=1.0, seed=3)
    history = train.fit(
        model,
        loss_fn,
        optimizer,
        (x, y),
        (x_val, y_val),
        epochs=30,
        batch_size=8,
        overfit_one_batch=True,
        progress=False,
        log=lambda message: None,
    )
    training_batches = [seen for seen in model.seen if len(seen) != len(x_val)]
    sizes = sorted({len(seen) for seen in training_batches})
    assert sizes == [8], (
        f"fit(overfit_one_batch=True): trained on batches of {sizes} samples, expected only 8 "
        "(the first batch)"
    )
    first = set(map(bytes, x[:8].reshape(8, -1)))
    for seen in training_batches:
        assert set(map(bytes, seen.reshape(len(seen), -1))) == first, (
            "fit(overfit_one_batch=True): trained on samples other than the first batch_size"
        )
    assert all(value is None for value in history.val_loss), (
        "fit(overfit_one_batch=True): validated on val_data; the debugging run uses none"
    )
    assert history.train_loss[-1] < 0.05, (
        f"fit(overfit_one_batch=True): final loss {history.train_loss[-1]:.3f}, expected < 0.05"
    )
