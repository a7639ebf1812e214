"""Part 2: the training and validation loop (`train_one_epoch` and `evaluate` in
`dlcc.training.loop`).

The models here are small plain `torch.nn` stacks on Gaussian blobs, not the assignment's
SmallCNN, and no schedule is used: these tests grade the loop alone. The oracle is a plain
PyTorch loop written out below.

When graded, the model, its optimiser and the loop run in the learner's process
(`a2_helpers.twins`, `sgd_for`, `train_epoch`); the test reads the weights the loop left back
as data and compares them with the plain loop's, run here on a twin with the same initial
weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from a2_helpers import (
    batches_of,
    batchnorm_net,
    blobs,
    dropout_net,
    evaluate,
    flat_parameters,
    gradients_are_none,
    parameters_of,
    sgd_for,
    state_of,
    tiny_mlp,
    train_epoch,
    twins,
)
from torch import nn


def plain_epoch(model, batches, optimizer, *, zero_grad=True, reduction="mean", smoothing=0.0):
    """The textbook loop; `zero_grad=False` and `reduction="sum"` imitate two common slips."""
    losses, correct, seen = 0.0, 0, 0
    for images, labels in batches:
        logits = model(images)
        loss = F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=smoothing)
        loss.backward()
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad()
        batch_loss = loss.item() if reduction == "mean" else loss.item() / len(labels)
        losses += batch_loss * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    return {"loss": losses / seen, "accuracy": correct / seen}


# ---- train_one_epoch ----------------------------------------------------------------------
def test_train_one_epoch_lowers_the_loss_on_one_batch():
    x, y = blobs(32, features=16, classes=4, seed=1)
    model, twin = twins(nn.Linear, 16, 4, seed=1)  # the learner's side's, and its copy here
    with torch.no_grad():
        before = F.cross_entropy(twin(x), y).item()
    result = train_epoch(model, [(x, y)] * 20, sgd_for(model, lr=0.1))
    twin.load_state_dict(state_of(model))  # the weights the learner's loop left
    with torch.no_grad():
        after = F.cross_entropy(twin(x), y).item()
    assert after < 0.8 * before, (
        f"train_one_epoch: the loss did not decrease over 20 steps on one batch "
        f"({before:.2f} -> {after:.2f}): is optimizer.step() called?"
    )
    assert set(result) >= {"loss", "accuracy", "samples"} and result["samples"] == 20 * 32, (
        f"train_one_epoch: returned {result}; expected loss, accuracy and 640 samples"
    )
    assert after <= result["loss"] <= before + 1e-6, (
        f"train_one_epoch: reported mean training loss {result['loss']:.4f}, not between the "
        f"loss before ({before:.4f}) and after ({after:.4f}): is `loss` the batch's mean "
        "cross-entropy?"
    )


def test_train_one_epoch_matches_a_plain_loop():
    x, y = blobs(80, seed=2)
    batches = batches_of(x, y, 16)
    model, reference = twins(tiny_mlp, seed=2)
    start = flat_parameters(reference)
    result = train_epoch(model, batches, sgd_for(model, lr=0.2, momentum=0.9))
    got = parameters_of(model)
    assert not torch.equal(got, start), (
        "train_one_epoch: the weights did not change over 5 batches: is optimizer.step() called?"
    )

    def plain_weights(**slip):
        twin = copy.deepcopy(reference)
        metrics = plain_epoch(twin, batches, torch.optim.SGD(twin.parameters(), 0.2, 0.9), **slip)
        return flat_parameters(twin), metrics

    expected, metrics = plain_weights()
    if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
        if torch.allclose(got, plain_weights(zero_grad=False)[0], rtol=1e-5, atol=1e-6):
            raise AssertionError(
                "train_one_epoch: gradients add up from one step to the next: clear them "
                "(optimizer.zero_grad()) after each step"
            )
        if torch.allclose(got, plain_weights(reduction="sum")[0], rtol=1e-5, atol=1e-6):
            raise AssertionError(
                "train_one_epoch: the loss is summed over the batch; use the batch's mean "
                "cross-entropy (F.cross_entropy's default)"
            )
        difference = (got - expected).abs().max().item()
        raise AssertionError(
            f"train_one_epoch: the weights after 5 steps differ from a plain PyTorch loop's "
            f"(max abs. difference {difference:.2e}): forward, mean cross-entropy, backward, "
            "step, zero_grad"
        )
    for key in ("loss", "accuracy"):
        assert abs(result[key] - metrics[key]) < 1e-5, (
            f"train_one_epoch: reported {key} {result[key]:.5f}, the plain loop's is "
            f"{metrics[key]:.5f}"
        )


def test_train_one_epoch_trains_in_training_mode():
    x, y = blobs(24, seed=3)
    model, _ = twins(dropout_net, seed=3)  # linear, dropout, a ModeRecorder, linear
    model.eval()  # as `evaluate` leaves it at the end of the previous epoch
    train_epoch(model, batches_of(x, y, 8), sgd_for(model, lr=0.1))
    modes = list(model[2].modes)  # what the recorder saw, in the learner's process
    assert modes and all(modes), (
        "train_one_epoch: the model ran in evaluation mode: call model.train() first "
        "(dropout and BatchNorm behave differently while training)"
    )


# ---- evaluate -------------------------------------------------------------------------------
def test_evaluate_matches_hand_computed_loss_and_accuracy():
    x, y = blobs(27, classes=4, seed=4)
    model, twin = twins(nn.Linear, 12, 4, seed=4)
    with torch.no_grad():
        logits = twin(x)
    expected_loss = F.cross_entropy(logits, y).item()
    expected_accuracy = (logits.argmax(1) == y).double().mean().item()
    result = evaluate(model, batches_of(x, y, 10), num_classes=4)  # batches of 10, 10 and 7
    assert isinstance(result, dict) and {"loss", "accuracy"} <= set(result), (
        f"evaluate: a dict with loss and accuracy expected, got {result!r}"
    )
    assert abs(result["loss"] - expected_loss) < 1e-5, (
        f"evaluate: loss {result['loss']:.5f}, expected {expected_loss:.5f} (the mean "
        "cross-entropy over all 27 images, batches of 10, 10 and 7)"
    )
    assert abs(result["accuracy"] - expected_accuracy) < 1e-6, (
        f"evaluate: accuracy {result['accuracy']:.4f}, expected {expected_accuracy:.4f} "
        "(the fraction of the 27 images whose largest logit is the label)"
    )
    assert all(gradients_are_none(model)), (
        "evaluate: parameters have gradients afterwards; evaluation needs no backward pass"
    )


def test_evaluate_runs_the_model_in_evaluation_mode():
    x, y = blobs(40, seed=5)
    model, twin = twins(batchnorm_net, seed=5)  # linear, BatchNorm, ReLU, dropout, linear
    model.train()
    result = evaluate(model, batches_of(x, y, 8), num_classes=3)
    running_mean = state_of(model)["1.running_mean"]  # the learner's model's, afterwards
    assert torch.equal(running_mean, twin[1].running_mean), (
        "evaluate: BatchNorm's running statistics changed: the model ran in training mode; "
        "call model.eval() first"
    )
    twin.eval()
    with torch.no_grad():
        expected = F.cross_entropy(twin(x), y).item()
    assert abs(result["loss"] - expected) < 1e-5, (
        f"evaluate: loss {result['loss']:.5f}, expected {expected:.5f} with the model in "
        "evaluation mode (no dropout, BatchNorm's running statistics)"
    )
