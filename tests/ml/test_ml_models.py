"""Model tests: properties that hold whatever the weights are, checked on untrained models.

A trained model's accuracy says little about whether the code is right: a bug can cost a
few points and go unnoticed. These tests need no training and run in seconds:

- **output shapes** of every registered model, in the layout its task expects;
- **batch independence**: in eval mode a sample's output does not depend on the other
  samples of its batch. It is guaranteed by every architecture here and broken by a
  reshape or a transpose that mixes the batch axis with another. The gradient shows it
  exactly: d output[0] / d input[1] is zero, not small;
- **causality**: a causal model (the character Transformer, a causal beat detector) does
  not read the future: changing a later input leaves the earlier outputs as they were;
- **equivariance**: a fully convolutional net commutes with shifts (away from the borders,
  which the zero padding breaks). It does *not* commute with flips: a convolution's
  kernels are not symmetric, so an untrained U-Net's output on a mirrored image is not the
  mirrored output, and no test should claim it (one here checks that it is not). Flip
  invariance must come from training (the isbi_unet recipe's flip augmentation encourages
  it, on average, no more) or from test-time augmentation: averaging over the four flips
  (`predict_tiled(tta=True)`) is flip-equivariant by construction, and that is tested;
- **the loss falls on a tiny batch**: a few optimiser steps on one batch, through each
  task's own loss, must lower it. If they cannot, the model, the loss and the optimiser
  are not wired together (a detached tensor, a wrong sign, an lr of 0);
- **determinism**: the same seed builds the same weights and the same outputs after
  training steps, bit for bit; another seed does not (so the check can fail).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcc.models import build_model
from dlcc.models.registry import MODELS
from dlcc.training.sequence import reset_carried_state

# Small versions of every registered model, with an input shape of its kind.
SMALL = {
    "mlp": ({"hidden": (16,)}, (1, 8, 8)),
    "small_cnn": ({"widths": (8, 16)}, (1, 16, 16)),
    "preact_resnet": ({"widths": (8, 16), "blocks": (1, 1)}, (3, 16, 16)),
    "resnet20": ({}, (3, 16, 16)),
    "small_fcn": ({"widths": (8, 8)}, (1, 16, 16)),
    "unet": ({"depth": 2, "width": 4}, (1, 16, 16)),
    "beatnet": ({"body": "gru", "width": 8, "hidden": 8, "layers": 1}, (1, 256)),
    "char_rnn": ({"embedding": 8, "hidden": 16}, (12,)),
    "char_gpt": ({"layers": 1, "dim": 16, "heads": 2}, (12,)),
}
CLASSES = 5
OUTPUTS = {"beatnet": 1}  # one heatmap of beats; the others get CLASSES outputs
BATCH = 3


def outputs_of(name: str) -> int:
    return OUTPUTS.get(name, CLASSES)


def small(name: str, seed: int = 0, **extra) -> torch.nn.Module:
    options, shape = SMALL[name]
    torch.manual_seed(seed)
    return build_model(name, shape, outputs_of(name), **{**options, **extra}).eval()


def inputs_for(name: str, batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    shape = SMALL[name][1]
    generator = torch.Generator().manual_seed(seed)
    if MODELS[name].inputs == "tokens":
        return torch.randint(0, CLASSES, (batch, *shape), generator=generator)
    return torch.randn(batch, *shape, generator=generator)


def run(model, x):
    output = model(x)
    return output[0] if isinstance(output, tuple) else output  # stateful: (logits, state)


def test_every_registered_model_is_covered():
    """A new model must join these tests: give it a small version in SMALL."""
    assert set(SMALL) == set(MODELS), f"add to SMALL: {sorted(set(MODELS) - set(SMALL))}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name):
    """Classifiers give (N, K), dense models (N, K, H, W), signals (N, K, T), tokens (N, T, V)."""
    if name not in SMALL:
        pytest.fail(f"{name} has no small version in SMALL")
    shape = SMALL[name][1]
    with torch.no_grad():
        output = run(small(name), inputs_for(name))
    k = outputs_of(name)
    expected = {
        "classes": (BATCH, k),
        "dense": (BATCH, k, *shape[1:]),
        "signal": (BATCH, k, shape[-1]),
        "sequence": (BATCH, shape[0], k),
    }[MODELS[name].output]
    assert tuple(output.shape) == expected
    assert output.dtype == torch.float32 and torch.isfinite(output).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_samples_output_does_not_depend_on_the_rest_of_its_batch(name):
    """In eval mode: the gradient of sample 0's output with respect to the others is zero."""
    model = small(name)
    x = inputs_for(name)
    if MODELS[name].inputs == "tokens":  # integer inputs: compare outputs instead
        with torch.no_grad():
            alone, together = run(model, x[:1]), run(model, x)[:1]
        torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)
        return
    x.requires_grad_(True)
    run(model, x)[0].sum().backward()
    assert x.grad[0].abs().sum() > 0, "sample 0's output depends on sample 0"
    assert torch.count_nonzero(x.grad[1:]) == 0, "sample 0's output depends on other samples"


def test_batch_norm_in_train_mode_does_mix_the_batch():
    """Why the test above uses eval mode: in training, BatchNorm uses the batch's statistics."""
    model = small("small_cnn").train()
    x = inputs_for("small_cnn").requires_grad_(True)
    model(x)[0].sum().backward()
    assert torch.count_nonzero(x.grad[1:]) > 0


def test_the_character_transformer_does_not_read_the_future():
    """Changing tokens from position t on leaves the logits before t exactly as they were."""
    model = small("char_gpt")
    tokens = inputs_for("char_gpt")
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % CLASSES
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :7], after[:, :7], rtol=0, atol=1e-6)
    assert (before[:, 7:] - after[:, 7:]).abs().max() > 1e-3


def test_a_causal_beat_detector_does_not_read_the_future():
    """BeatNet(causal=True): the output before a change is untouched by it.

    The front end works at a stride of 4 and its output is repeated back to full rate, so a
    change at sample t may reach the outputs of its own stride-4 block; earlier ones, never.
    """
    model = small("beatnet", causal=True)
    x = inputs_for("beatnet")
    changed = x.clone()
    changed[..., 160:] += 1.0
    with torch.no_grad():
        before, after = model(x), model(changed)
    torch.testing.assert_close(before[..., :156], after[..., :156], rtol=0, atol=1e-6)
    assert (before[..., 160:] - after[..., 160:]).abs().max() > 1e-4
    bidirectional = small("beatnet")  # the default reads both ways: the check can fail
    with torch.no_grad():
        assert (bidirectional(x)[..., :156] - bidirectional(changed)[..., :156]).abs().max() > 1e-4


def test_a_fully_convolutional_net_commutes_with_shifts():
    """small_fcn (full resolution, no pooling): shift the image, and the output shifts too.

    Exact away from the borders: each output pixel sees a small window of the input, and
    the same weights everywhere. Within the receptive field of the border, zero padding
    differs, so those pixels are left out.
    """
    model = small("small_fcn")
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    shifted = torch.roll(x, shifts=(3, 5), dims=(2, 3))
    with torch.no_grad():
        output, output_of_shifted = model(x), model(shifted)
    margin = 8  # more than the receptive field's half-width plus the shift
    inner = (slice(None), slice(None), slice(margin, -margin), slice(margin, -margin))
    torch.testing.assert_close(
        torch.roll(output, shifts=(3, 5), dims=(2, 3))[inner], output_of_shifted[inner],
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip


def test_a_unet_is_not_flip_equivariant_but_test_time_flips_are():
    """Mirrored input, mirrored output? Not by architecture; exactly, with flip TTA."""
    from dlcc.segmentation.tiling import predict_tiled

    model = small("unet")
    image = np.random.default_rng(0).normal(size=(1, 32, 32)).astype(np.float32)
    mirrored = image[:, :, ::-1].copy()
    plain = predict_tiled(model, image, tile=32, overlap=0)
    plain_mirrored = predict_tiled(model, mirrored, tile=32, overlap=0)
    assert np.abs(plain_mirrored - plain[:, :, ::-1]).max() > 1e-3, "not guaranteed, not there"
    tta = predict_tiled(model, image, tile=32, overlap=0, tta=True)
    tta_mirrored = predict_tiled(model, mirrored, tile=32, overlap=0, tta=True)
    np.testing.assert_allclose(tta_mirrored, tta[:, :, ::-1], rtol=0, atol=1e-6)


# ---- a tiny batch, a few steps ----------------------------------------------------------


def tiny_task(recipe: str, overrides=()):
    """(task, model, one batch) from a smoke recipe, through the trainer's own set-up."""
    from dlcc.training.config import load_recipe
    from dlcc.training.data import ShardedShuffleSampler, make_loader
    from dlcc.training.setup import build_network, seed_everything
    from dlcc.training.tasks import load_task_data

    config = load_recipe(recipe, list(overrides))
    seed_everything(0, True)
    task, data = load_task_data(config)
    model = build_network(config, data, task)
    loader = make_loader(data.train, 8, ShardedShuffleSampler(len(data.train), 0))
    inputs, targets = next(iter(loader))
    return config, task, model, inputs, targets


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    rows, columns = np.mgrid[:16, :16]
    for index in range(12):
        centre = rng.uniform(5, 11, 2)
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < 12
        image = np.clip(0.3 + 0.4 * disc + rng.normal(0, 0.1, (16, 16)), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{index}.png")
        Image.fromarray((disc * 255).astype(np.uint8)).save(folder / "masks" / f"{index}.png")
    return folder


TINY = {
    "classification": ("mnist_cnn_smoke", []),
    "segmentation": ("segmentation_smoke", ["data.path={pairs}"]),
    "beats": ("ecg_beats_smoke", []),  # synthetic records only (use_mitdb: false)
    "language_model": ("shakespeare_gru_smoke", []),
}


@pytest.mark.parametrize("task_name", TINY)
def test_the_loss_falls_on_a_tiny_batch(task_name, pairs):
    """Ten Adam steps on one batch of 8, with the task's own loss, lower it by a quarter."""
    recipe, overrides = TINY[task_name]
    overrides = [item.format(pairs=pairs) for item in overrides]
    _, task, model, inputs, targets = tiny_task(recipe, overrides)
    assert task.name == task_name
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(10):
        reset_carried_state(model)  # the same batch each step, from the same state
        loss = task.loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.75 * losses[0], f"{task_name}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"


# ---- determinism ------------------------------------------------------------------------


def train_steps(seed: int, steps: int = 5) -> tuple[dict, torch.Tensor]:
    """A small CNN's weights and outputs after `steps` SGD steps, everything seeded."""
    from dlcc.training.setup import seed_everything

    seed_everything(seed, True)
    model = build_model("small_cnn", (1, 16, 16), CLASSES, widths=(8, 16), dropout=0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 1, 16, 16, generator=generator)
    y = torch.randint(0, CLASSES, (16,), generator=generator)
    model.train()  # dropout draws from torch's global generator, seeded above
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return {k: v.clone() for k, v in model.state_dict().items()}, model.eval()(x)


def test_the_same_seed_gives_the_same_weights_and_outputs_bit_for_bit():
    """Two runs with one seed agree exactly; a run with another seed does not."""
    weights, outputs = train_steps(0)
    weights_again, outputs_again = train_steps(0)
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    assert torch.equal(outputs, outputs_again)
    _, other = train_steps(1)
    assert not torch.equal(outputs, other)
