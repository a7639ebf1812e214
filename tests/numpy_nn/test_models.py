"""The Assignment 1 models: shapes, parameter counts, and parity with torch."""

from __future__ import annotations

import numpy as np
import pytest

from dlcc.numpy_nn import models

torch = pytest.importorskip("torch")


def test_cnn_defaults_are_the_benchmark_network_and_match_torch():
    model = models.cnn((1, 28, 28), 10, dtype=np.float64).eval()
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3136, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    ).double()
    model.load_state_dict(reference.state_dict())
    assert model.num_parameters() == sum(p.numel() for p in reference.parameters())
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    np.testing.assert_allclose(model(x), reference(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def test_mlp_counts_its_parameters_like_the_written_question():
    """784*256+256 + 256*128+128 + 128*10+10: a written question of Assignment 1."""
    model = models.mlp((1, 28, 28), 10, hidden=(256, 128))
    assert model.num_parameters() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert model(np.zeros((5, 1, 28, 28), np.float32)).shape == (5, 10)


def test_first_layer_skips_the_input_gradient():
    for model, shape in [
        (models.mlp((1, 4, 4), 3, hidden=(8,)), (2, 1, 4, 4)),
        (models.cnn((1, 4, 4), 3, channels=(4,), hidden=8), (2, 1, 4, 4)),
    ]:
        logits = model(np.ones(shape, np.float32))
        assert model.backward(np.ones_like(logits)) is None
        assert all(grad.any() for _, grad in model.parameters())


def test_cnn_refuses_images_too_small_for_its_pooling():
    with pytest.raises(ValueError, match=r"3 pooling stages need images of at least 8x8, got 4x4"):
        models.cnn((1, 4, 4), 10, channels=(8, 16, 32))


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_float32_training_step_stays_float32(optimizer_name):
    """No silent up-casting anywhere in the hot path: an np.float64 scalar slipping into
    any layer, loss or update would turn some array float64 and it would show here."""
    import dlcc.numpy_nn as nn

    model = models.cnn((1, 12, 12), 10, channels=(4, 8), hidden=16, dropout=0.2)
    model = nn.Sequential(*model.modules[:3], nn.BatchNorm2d(4), *model.modules[3:])
    optimizer = getattr(nn, optimizer_name)(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = np.random.default_rng(0).random((4, 1, 12, 12), dtype=np.float32)
    activations = [x]
    for module in model:
        activations.append(module.forward(activations[-1]))
    loss_fn.forward(activations[-1], np.arange(4))
    grad = loss_fn.backward()
    grads_in = [grad]
    for module in reversed(model.modules):
        grad = module.backward(grad)
        if grad is not None:
            grads_in.append(grad)
    optimizer.step()
    arrays = activations + grads_in + [a for pair in model.parameters() for a in pair]
    arrays += list(model.state_dict().values())
    assert {a.dtype for a in arrays} <= {np.dtype(np.float32), np.dtype(np.int64)}
