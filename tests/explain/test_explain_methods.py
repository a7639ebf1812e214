"""Saliency, SmoothGrad, Grad-CAM and occlusion against oracles: a linear model's weights,
a model that reads one patch, a hand-built conv net, the randomisation sanity check of
Adebayo et al. (2018), and a region of a tiny U-Net's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from dlcc.data import load_dataset
from dlcc.explain import (
    ExplainError,
    RegionScore,
    TargetError,
    class_target,
    default_layer,
    explain,
    gradcam,
    input_gradient,
    occlusion,
    region_target,
    resolve_target,
    saliency,
    smoothgrad,
)
from dlcc.models.cnn import SmallCNN
from dlcc.models.unet import UNet


def _linear(rng, channels: int, height: int, width: int, classes: int):
    weight = rng.normal(size=(classes, channels * height * width)).astype(np.float32)
    linear = nn.Linear(channels * height * width, classes)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
    return nn.Sequential(nn.Flatten(), linear).eval(), weight.reshape(
        classes, channels, height, width
    )


@pytest.mark.parametrize("trial", range(4))
def test_the_saliency_of_a_linear_model_is_its_weights(trial):
    rng = np.random.default_rng(trial)
    channels, height, width = (
        int(rng.integers(1, 4)),
        int(rng.integers(2, 7)),
        int(rng.integers(2, 7)),
    )
    classes, batch = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    model, weight = _linear(rng, channels, height, width, classes)
    inputs = torch.from_numpy(rng.normal(size=(batch, channels, height, width)).astype(np.float32))
    target = int(rng.integers(0, classes))
    score = class_target(model(inputs), target)
    gradient = input_gradient(model, inputs, score).numpy()
    np.testing.assert_allclose(gradient, np.broadcast_to(weight[target], gradient.shape), atol=1e-6)
    expected = np.abs(weight[target]).max(axis=0)  # (H, W): the largest |w| over channels
    np.testing.assert_allclose(
        saliency(model, inputs, score).numpy(),
        np.broadcast_to(expected, (batch, height, width)),
        atol=1e-6,
    )
    # the gradient of a linear model is the same everywhere: SmoothGrad changes nothing
    smooth = smoothgrad(model, inputs, score, samples=3, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(
        smooth.numpy(), np.broadcast_to(expected, (batch, height, width)), atol=1e-5
    )


def test_the_default_class_is_each_image_s_prediction():
    rng = np.random.default_rng(7)
    model, weight = _linear(rng, 1, 3, 3, 4)
    inputs = torch.from_numpy(rng.normal(size=(5, 1, 3, 3)).astype(np.float32))
    predicted = model(inputs).argmax(dim=1)
    gradient = input_gradient(model, inputs, resolve_target(model, inputs)).numpy()
    np.testing.assert_allclose(gradient, weight[predicted.numpy()], atol=1e-6)
    with pytest.raises(TargetError, match=r"class index in 0\.\.3, received 4"):
        class_target(model(inputs), 4)


class OnePatch(nn.Module):
    """Class 1's logit is the weighted sum of rows 2:4, columns 4:6; class 0's is 0."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.tensor([[1.0, 2.0], [3.0, 0.5]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = (x[:, 0, 2:4, 4:6] * self.weight).sum(dim=(1, 2))  # (B,)
        return torch.stack([torch.zeros_like(evidence), evidence], dim=1)  # (B, 2)


def test_occlusion_lights_the_one_patch_a_model_reads():
    inputs = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    model = OnePatch()
    score = class_target(model(inputs), 1)
    # patches on a grid that the region lies on: exactly the region, by its evidence
    maps = occlusion(model, inputs, score, patch=2, stride=2)
    expected = torch.zeros(3, 8, 8)
    expected[:, 2:4, 4:6] = model(inputs)[:, 1].view(-1, 1, 1)
    torch.testing.assert_close(maps, expected)
    # sliding 2x2 patches, stride 1: exactly the pixels of a patch that overlaps the region
    sliding = occlusion(model, inputs, score, patch=2, stride=1)
    lit = torch.zeros(8, 8, dtype=torch.bool)
    lit[1:5, 3:7] = True
    assert torch.equal(sliding[0] > 1e-6, lit)
    # and each pixel holds the mean drop of the 2x2 windows covering it, pixel by pixel
    x = inputs[0, 0].numpy().astype(np.float64)
    weight = np.zeros((8, 8))
    weight[2:4, 4:6] = model.weight.numpy()
    expected = np.zeros((8, 8))
    for row in range(8):
        for col in range(8):
            drops = [
                (weight * x)[top : top + 2, left : left + 2].sum()
                for top in range(7)
                for left in range(7)
                if top <= row < top + 2 and left <= col < left + 2
            ]
            expected[row, col] = np.mean(drops)
    np.testing.assert_allclose(sliding[0].numpy(), expected, rtol=1e-5, atol=1e-6)


class TwoSquares(nn.Module):
    """A hand-built conv net: channel k of a 2x2 stride-2 average conv feeds class k's logit,
    the sum of its rectified map, so class k's evidence is wherever channel k is bright."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 2, stride=2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 0.25
            self.conv.weight[1, 1] = 0.25
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x)).sum(dim=(2, 3))  # (B, 2)


def test_grad_cam_highlights_the_region_a_class_depends_on():
    image = torch.zeros(1, 2, 16, 16)
    image[0, 0, 0:4, 0:4] = 1.0  # class 0's evidence: top left
    image[0, 1, 10:16, 8:14] = 1.0  # class 1's: bottom right
    model = TwoSquares().eval()
    assert default_layer(model, image) == "conv"
    for target, (rows, cols) in (
        (0, (slice(0, 4), slice(0, 4))),
        (1, (slice(10, 16), slice(8, 14))),
    ):
        cam = gradcam(model, image, class_target(model(image), target))[0]  # (16, 16)
        inside = cam[rows, cols].sum()
        assert inside / cam.sum() > 0.85, target
        row, col = divmod(int(cam.argmax()), 16)
        assert rows.start <= row < rows.stop and cols.start <= col < cols.stop


def test_the_default_grad_cam_layer_is_the_last_conv_block_not_a_1x1_head():
    assert default_layer(SmallCNN(1, 3, widths=(4, 8)).eval(), torch.rand(1, 1, 8, 8)) == "features"
    unet = UNet(1, 1, depth=2, width=4).eval()
    assert default_layer(unet, torch.rand(1, 1, 16, 16)) == "ups.1"
    with pytest.raises(ExplainError, match=r"has none: use --method saliency"):
        default_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(1, 1, 2, 2))
    with pytest.raises(
        ExplainError, match=r"--layer 'nope': no such module; the conv layers are: features"
    ):
        gradcam(
            SmallCNN(1, 3, widths=(4,)).eval(),
            torch.rand(1, 1, 8, 8),
            lambda out: out[:, 0],
            "nope",
        )


def test_an_unknown_method_names_the_known_ones():
    with pytest.raises(
        ExplainError,
        match=r"one of saliency, smoothgrad, gradcam, occlusion.*'gradcm'.*did you mean 'gradcam'",
    ):
        explain("gradcm", nn.Identity(), torch.rand(1, 1, 2, 2), lambda out: out.sum((1, 2, 3)))


@pytest.fixture(scope="module")
def digits_models():
    """(trained SmallCNN, the same architecture re-initialised, 24 test images): Adebayo's
    model-randomisation test needs a model that learnt something, trained here in seconds."""
    dataset = load_dataset("digits", None, val_size=0.1, seed=0)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    torch.manual_seed(0)
    model = SmallCNN(1, 10, widths=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(60):
        batch = slice((step * 128) % (len(x) - 128), (step * 128) % (len(x) - 128) + 128)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    model.eval()
    test = torch.from_numpy(dataset.x_test[:24])
    with torch.no_grad():
        accuracy = (model(test).argmax(1) == torch.from_numpy(dataset.y_test[:24])).float().mean()
    assert accuracy > 0.7
    torch.manual_seed(123)
    randomised = SmallCNN(1, 10, widths=(8, 16))
    randomised.load_state_dict(model.state_dict())  # the BN statistics stay: only weights change
    for module in randomised.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            module.reset_parameters()
    return model, randomised.eval(), test


def _mean_rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    """The mean over images of the Spearman rank correlation of two (B, H, W) maps; a
    constant map (Grad-CAM rectified to zero everywhere) ranks nothing and counts as 0."""
    values = [
        spearmanr(a.flatten(), b.flatten())[0] if a.std() > 0 and b.std() > 0 else 0.0
        for a, b in zip(first, second, strict=True)
    ]
    return float(np.mean(values))


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "gradcam", "occlusion"])
def test_randomising_the_weights_changes_the_maps(digits_models, method):
    model, randomised, images = digits_models
    score = resolve_target(model, images)  # the same classes for both models

    def maps(network):
        options = {
            "occlusion": {"patch": 2, "stride": 1},
            "smoothgrad": {"samples": 5, "generator": torch.Generator().manual_seed(0)},
        }
        return explain(method, network, images, score, **options.get(method, {}))

    trained_maps = maps(model)
    assert _mean_rank_correlation(trained_maps, maps(randomised)) < 0.5
    # the bound can fail: maps that do not depend on the weights (here the same model's,
    # twice) correlate perfectly
    assert _mean_rank_correlation(trained_maps, maps(model)) > 0.99


def test_a_segmentation_target_is_the_summed_logit_of_a_region_of_a_tiny_unet():
    torch.manual_seed(0)
    model = UNet(1, 1, depth=2, width=4).eval()
    image = torch.rand(1, 1, 48, 48)
    logits = model(image)  # (1, 1, 48, 48)
    box = region_target(logits, 1, box=(0, 0, 4, 4))
    assert isinstance(box, RegionScore)
    torch.testing.assert_close(box(logits), logits[:, 0, 0:4, 0:4].sum().view(1))
    predicted = region_target(logits)  # class 1: the pixels with a positive logit
    torch.testing.assert_close(predicted(logits), logits[logits > 0].sum().view(1))
    background = region_target(logits, 0)
    torch.testing.assert_close(background(logits), -logits[logits <= 0].sum().view(1))
    # the box's saliency lives in its receptive field: nothing at the far corner
    maps = saliency(model, image, box)[0]  # (48, 48)
    assert maps[0:4, 0:4].sum() > 0
    assert maps[32:, 32:].abs().max() == 0
    # occluding far away changes nothing; Grad-CAM and SmoothGrad give input-sized maps
    occluded = occlusion(model, image, box, patch=8, stride=8)[0]
    assert occluded[0:4, 0:4].abs().sum() > 0 and occluded[32:, 32:].abs().max() < 1e-4
    assert gradcam(model, image, box).shape == (1, 48, 48)
    assert smoothgrad(model, image, box, samples=2).shape == (1, 48, 48)
    with pytest.raises(TargetError, match=r"--box: expected row0,col0,row1,col1"):
        region_target(logits, 1, box=(0, 0, 60, 4))
