"""Losses against torch.nn.functional, on random shapes, dtypes and settings (numpy-ml style).

Each seed draws one configuration, so a failure names the seed that reproduces it.
"""

import numpy as np
import pytest
from numpy_nn_helpers import DtypeRecorder

torch = pytest.importorskip("torch")
F = torch.nn.functional

from dlcc.numpy_nn.losses import (  # noqa: E402
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    log_softmax,
    softmax,
)
from dlcc.numpy_nn.module import BackwardBeforeForwardError  # noqa: E402

DTYPES = [np.float64, np.float32]
# (rtol, atol) per dtype for values and gradients
TOLERANCES = {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 1e-6)}


def torch_value_and_grad(torch_fn, logits, *args, **kwargs):
    logits_t = torch.tensor(logits, requires_grad=True)
    loss = torch_fn(logits_t, *args, **kwargs)
    loss.backward()
    return loss.item(), logits_t.grad.numpy()


# ---- softmax / log_softmax -------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_match_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 6, size=rng.integers(1, 4)))
    axis = int(rng.integers(-len(shape), len(shape)))
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    rtol, atol = TOLERANCES[dtype]
    probs, log_probs = softmax(x, axis=axis), log_softmax(x, axis=axis)
    assert probs.dtype == dtype and log_probs.dtype == dtype
    np.testing.assert_allclose(probs, torch.softmax(torch.tensor(x), axis).numpy(), rtol, atol)
    np.testing.assert_allclose(
        log_probs, torch.log_softmax(torch.tensor(x), axis).numpy(), rtol, 10 * atol
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_for_huge_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        probs, log_probs = softmax(x), log_softmax(x)
    np.testing.assert_allclose(probs, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(log_probs, torch.log_softmax(torch.tensor(x), -1).numpy())


def test_softmax_rejects_integer_input():
    with pytest.raises(ValueError, match=r"softmax.*float32 or float64.*int64"):
        softmax(np.arange(3))


# ---- CrossEntropyLoss -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    num_samples, num_classes = int(rng.integers(1, 17)), int(rng.integers(1, 11))
    reduction = str(rng.choice(["mean", "sum"]))
    label_smoothing = float(rng.uniform(0, 0.5)) if seed % 2 else 0.0
    scale = 10.0 ** rng.uniform(-1, 1.5)
    logits = (rng.standard_normal((num_samples, num_classes)) * scale).astype(dtype)
    labels = rng.integers(0, num_classes, size=num_samples)

    loss_fn = CrossEntropyLoss(reduction=reduction, label_smoothing=label_smoothing)
    value = loss_fn(logits, labels)
    grad = loss_fn.backward()
    expected_value, expected_grad = torch_value_and_grad(
        F.cross_entropy,
        logits,
        torch.tensor(labels),
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    rtol, atol = TOLERANCES[dtype]
    assert isinstance(value, float)
    assert grad.dtype == dtype and grad.shape == logits.shape
    np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=atol * num_samples * scale)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_is_stable_at_plus_minus_1e4(dtype, label_smoothing):
    rng = np.random.default_rng(0)
    logits = rng.choice([-1e4, 1e4], size=(8, 5)).astype(dtype)
    logits[0] = -1e4  # a row of all-equal huge negatives
    labels = rng.integers(0, 5, size=8)
    loss_fn = CrossEntropyLoss(label_smoothing=label_smoothing)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss_fn(logits, labels)
        grad = loss_fn.backward()
    assert np.isfinite(value) and np.isfinite(grad).all()
    expected_value, expected_grad = torch_value_and_grad(
        F.cross_entropy, logits, torch.tensor(labels), label_smoothing=label_smoothing
    )
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


def test_cross_entropy_accepts_any_integer_label_dtype():
    logits = np.random.default_rng(0).standard_normal((4, 3))
    values = [
        CrossEntropyLoss()(logits, np.array([0, 2, 1, 2], dtype=dtype))
        for dtype in (np.int64, np.int32, np.uint8)
    ]
    assert values[0] == values[1] == values[2]


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros((4, 3)), np.array([0, 1, 3, 0]), r"CrossEntropyLoss.*\[0, 3\).*0 to 3"),
        (np.zeros((4, 3)), np.array([0, -1, 2, 0]), r"CrossEntropyLoss.*\[0, 3\).*-1 to 2"),
        (np.zeros((4, 3)), np.zeros(4), r"CrossEntropyLoss.*integer.*float64"),
        (np.zeros((4, 3)), np.zeros((4, 3), dtype=np.int64), r"CrossEntropyLoss.*\(4,\).*\(4, 3\)"),
        (np.zeros((4, 3)), np.zeros(5, dtype=np.int64), r"CrossEntropyLoss.*\(4,\).*\(5,\)"),
        (np.zeros(4), np.zeros(4, dtype=np.int64), r"CrossEntropyLoss.*\(N, C\).*\(4,\)"),
        (np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64), r"float32 or float64"),
        ([[0.0, 1.0]], np.zeros(1, dtype=np.int64), r"CrossEntropyLoss.*NumPy array.*list"),
    ],
)
def test_cross_entropy_rejects_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        CrossEntropyLoss()(logits, labels)


def test_constructor_and_backward_misuse_are_clear():
    with pytest.raises(ValueError, match=r"reduction must be one of \('none', 'mean', 'sum'\)"):
        CrossEntropyLoss(reduction="max")
    with pytest.raises(ValueError, match=r"MSELoss: reduction must be one of \('mean', 'sum'\)"):
        MSELoss(reduction="none")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        CrossEntropyLoss(label_smoothing=1.5)
    loss_fn = MSELoss()
    with pytest.raises(BackwardBeforeForwardError, match=r"MSELoss.backward called before forward"):
        loss_fn.backward()
    loss_fn(np.ones(3), np.zeros(3))
    loss_fn.backward()
    with pytest.raises(BackwardBeforeForwardError, match="once per forward"):
        loss_fn.backward()


def test_backward_does_not_touch_the_inputs():
    rng = np.random.default_rng(1)
    logits, target = rng.standard_normal((3, 4)), rng.random((3, 4))
    copies = logits.copy(), target.copy()
    for loss_fn in (MSELoss(), BCEWithLogitsLoss()):
        loss_fn(logits, target)
        loss_fn.backward()
    loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    loss_fn(logits, np.array([0, 1, 2]))
    loss_fn.backward()
    np.testing.assert_array_equal(logits, copies[0])
    np.testing.assert_array_equal(target, copies[1])


# ---- CrossEntropyLoss on sequences, reduction="none", ignore_index ---------------------------
def torch_sequence_cross_entropy(logits, target, grad_loss=None, **kwargs):
    """torch's value and gradient; torch takes the classes on axis 1, (N, C, T)."""
    logits_t = torch.tensor(logits, requires_grad=True)
    scores = logits_t.transpose(1, 2) if logits.ndim == 3 else logits_t
    loss = F.cross_entropy(scores, torch.tensor(target), **kwargs)
    loss.backward(None if grad_loss is None else torch.tensor(grad_loss))
    return loss.detach().numpy(), logits_t.grad.numpy()


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequence_cross_entropy_matches_torch(seed, dtype):
    rng = np.random.default_rng(100 + seed)
    reduction = ("none", "mean", "sum")[seed % 3]
    batch, steps, classes = (int(n) for n in rng.integers(1, 6, size=3))
    sequence = seed % 4 != 3  # a quarter of the cases: (N, C) with ignored targets or "none"
    shape = (batch, steps) if sequence else (batch,)
    logits = (rng.standard_normal((*shape, classes)) * 3).astype(dtype)
    ignore_index = int(rng.choice([-100, 0, classes - 1]))
    target = rng.integers(0, classes, size=shape)
    target[rng.random(shape) < 0.3] = ignore_index
    if reduction == "mean" and (target == ignore_index).all():  # the mean needs a target
        target, ignore_index = rng.integers(0, classes, size=shape), -100
    label_smoothing = 0.1 if seed % 2 else 0.0
    kwargs = dict(reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing)

    loss_fn = CrossEntropyLoss(**kwargs)
    value = loss_fn(logits, target)
    grad_loss = rng.standard_normal(shape).astype(dtype) if reduction == "none" else None
    grad = loss_fn.backward(grad_loss)
    expected_value, expected_grad = torch_sequence_cross_entropy(
        logits, target, grad_loss, **kwargs
    )
    rtol, atol = TOLERANCES[dtype]
    if reduction == "none":
        assert value.shape == shape and value.dtype == dtype
        assert (value[target == ignore_index] == 0).all()
    else:
        assert isinstance(value, float)
    np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=10 * atol)
    assert grad.shape == logits.shape and grad.dtype == dtype
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=atol)


def test_sequence_cross_entropy_equals_the_flattened_one():
    """(N, T, C) with (N, T) is the same loss as (N*T, C) with (N*T,)."""
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, size=(3, 4))
    loss_fn = CrossEntropyLoss()
    value, grad = loss_fn(logits, target), loss_fn.backward()
    flat_value, flat_grad = loss_fn(logits.reshape(-1, 5), target.reshape(-1)), loss_fn.backward()
    np.testing.assert_allclose(value, flat_value, rtol=1e-14)
    np.testing.assert_allclose(grad, flat_grad.reshape(3, 4, 5), rtol=1e-14)


def test_ignored_targets_are_not_counted_by_the_mean():
    logits = np.random.default_rng(1).standard_normal((2, 3, 4))
    target = np.array([[1, 2, -100], [-100, -100, 0]])
    mean = CrossEntropyLoss()(logits, target)
    total = CrossEntropyLoss(reduction="sum")(logits, target)
    np.testing.assert_allclose(mean, total / 3, rtol=1e-14)  # 3 targets count, not 6


def test_every_target_ignored():
    logits, target = np.zeros((2, 3, 4)), np.full((2, 3), -100)
    with pytest.raises(ValueError, match=r"every target equals ignore_index=-100.*0/0.*sum"):
        CrossEntropyLoss()(logits, target)
    loss_fn = CrossEntropyLoss(reduction="sum")  # 0, as torch
    assert loss_fn(logits, target) == 0.0
    assert not loss_fn.backward().any()
    loss_fn = CrossEntropyLoss(reduction="none")
    assert not loss_fn(logits, target).any()
    assert not loss_fn.backward(np.ones((2, 3))).any()


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros((2, 4, 3)), np.zeros((2, 3), np.int64), r"\(N, T\) = \(2, 4\).*got \(2, 3\)"),
        (np.zeros((2, 3, 4)), np.zeros((2, 4), np.int64), r"classes on the last axis.*transpose"),
        (np.zeros((2, 4, 3)), np.full((2, 4), 3), r"\[0, 3\).*3 to 3.*ignore_index=-100"),
        (np.zeros((2, 4, 3)), np.zeros((2, 4)), r"integer array.*\(N, T\) = \(2, 4\).*float64"),
        (np.zeros((2, 4, 3, 1)), np.zeros((2, 4, 3), np.int64), r"\(N, C\) or.*\(N, T, C\)"),
    ],
)
def test_sequence_cross_entropy_rejects_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match=rf"^CrossEntropyLoss: .*{message}"):
        CrossEntropyLoss()(logits, labels)


def test_backward_argument_follows_the_reduction():
    logits, target = np.zeros((2, 4, 3)), np.zeros((2, 4), np.int64)
    loss_fn = CrossEntropyLoss(reduction="none")
    loss_fn(logits, target)
    with pytest.raises(ValueError, match=r"reduction='none'.*backward\(grad_loss\)"):
        loss_fn.backward()
    with pytest.raises(ValueError, match=r"grad_loss as an array of the losses' shape \(2, 4\)"):
        loss_fn.backward(np.ones(8))
    with pytest.raises(ValueError, match=r"grad_loss of dtype float64.*got float32"):
        loss_fn.backward(np.ones((2, 4), np.float32))
    assert loss_fn.backward(np.ones((2, 4))).shape == (2, 4, 3)  # still there after the errors
    loss_fn = CrossEntropyLoss()
    loss_fn(logits, target)
    with pytest.raises(ValueError, match=r"scalar loss.*without an argument"):
        loss_fn.backward(np.ones((2, 4)))


def test_float32_sequence_loss_never_computes_in_float64():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 5)).astype(np.float32).view(DtypeRecorder)
    target = rng.integers(0, 5, size=(3, 4))
    target[0, 0] = -100
    DtypeRecorder.seen = set()
    for reduction in ("mean", "sum"):
        loss_fn = CrossEntropyLoss(reduction=reduction, label_smoothing=0.1)
        loss_fn(logits, target)
        loss_fn.backward()
    loss_fn = CrossEntropyLoss(reduction="none")
    loss_fn(logits, target)
    loss_fn.backward(np.ones((3, 4), np.float32))
    assert np.dtype(np.float64) not in DtypeRecorder.seen


# ---- MSELoss and BCEWithLogitsLoss --------------------------------------------------------------
def random_elementwise_case(seed, dtype, binary_target):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 5)))
    reduction = str(rng.choice(["mean", "sum"]))
    scale = 10.0 ** rng.uniform(-1, 1.5)
    prediction = (rng.standard_normal(shape) * scale).astype(dtype)
    target = rng.random(shape)
    if binary_target:
        target = np.round(target) if seed % 2 else target  # hard and soft labels
    else:
        target = target * scale
    return prediction, target.astype(dtype), reduction


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("loss_class", "torch_fn", "binary_target"),
    [(MSELoss, F.mse_loss, False), (BCEWithLogitsLoss, F.binary_cross_entropy_with_logits, True)],
)
def test_elementwise_losses_match_torch(seed, dtype, loss_class, torch_fn, binary_target):
    prediction, target, reduction = random_elementwise_case(seed, dtype, binary_target)
    loss_fn = loss_class(reduction=reduction)
    value = loss_fn(prediction, target)
    grad = loss_fn.backward()
    expected_value, expected_grad = torch_value_and_grad(
        torch_fn, prediction, torch.tensor(target), reduction=reduction
    )
    rtol, atol = TOLERANCES[dtype]
    assert isinstance(value, float)
    assert grad.dtype == dtype and grad.shape == prediction.shape
    np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_stable_at_plus_minus_1e4(dtype):
    logits = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype)
    target = np.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype=dtype)
    loss_fn = BCEWithLogitsLoss(reduction="sum")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss_fn(logits, target)
        grad = loss_fn.backward()
    expected_value, expected_grad = torch_value_and_grad(
        F.binary_cross_entropy_with_logits, logits, torch.tensor(target), reduction="sum"
    )
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)


@pytest.mark.parametrize("loss_class", [MSELoss, BCEWithLogitsLoss])
def test_elementwise_losses_reject_mismatched_input(loss_class):
    name = loss_class.__name__
    with pytest.raises(ValueError, match=rf"{name}: target shape \(4, 1\).*shape \(4,\)"):
        loss_class()(np.zeros(4), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=rf"{name}: target dtype float32.*float64"):
        loss_class()(np.zeros(4), np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=rf"{name}: expected target of dtype float32 or float64"):
        loss_class()(np.zeros(4), np.zeros(4, dtype=np.int64))


def test_float32_losses_never_compute_in_float64():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4)).astype(np.float32).view(DtypeRecorder)
    target = rng.random((5, 4)).astype(np.float32).view(DtypeRecorder)
    DtypeRecorder.seen = set()
    for loss_fn, labels in [
        (CrossEntropyLoss(label_smoothing=0.1), np.array([0, 1, 2, 3, 0])),
        (MSELoss(), target),
        (BCEWithLogitsLoss(), target),
    ]:
        loss_fn(logits, labels)
        loss_fn.backward()
    softmax(logits)
    log_softmax(logits)
    assert np.dtype(np.float64) not in DtypeRecorder.seen
    assert np.dtype(np.float32) in DtypeRecorder.seen
