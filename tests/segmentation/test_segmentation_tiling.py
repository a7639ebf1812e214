"""predict_tiled against oracles: the whole-image output of the same model, computed
directly, for models whose tiles cannot differ from it (pointwise), for a real conv net,
and for test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlcc.models.fcn import SmallFCN
from dlcc.segmentation.tiling import (
    FLIPS,
    WINDOW_FLOOR,
    blend_window,
    predict_tiled,
    tile_starts,
)


class Identity16(nn.Module):
    """Output = input; refuses sides that are not multiples of 16 (as a U-Net would)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, ...]] = []
        self.anchor = nn.Parameter(torch.zeros(()))  # so the model has a device

    def forward(self, x):
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0, x.shape
        self.batches.append(tuple(x.shape))
        return x.clone()


def pointwise_net(channels_in: int, channels_out: int, seed: int) -> nn.Module:
    """1x1 convolutions: translation-equivariant with no padding, so tiling changes nothing."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels_in, 8, 1), nn.Tanh(), nn.Conv2d(8, channels_out, 1)
    ).eval()


def whole_image(model, image: np.ndarray, activation: str | None) -> np.ndarray:
    """The oracle: the model on the whole (C, H, W) image in one pass -> (K, H, W)."""
    with torch.no_grad():
        logits = model(torch.from_numpy(image)[None]).double()
    if activation == "sigmoid":
        logits = torch.sigmoid(logits)
    elif activation == "softmax":
        logits = torch.softmax(logits, dim=1)
    return logits[0].numpy()


def test_tile_starts_cover_every_pixel_and_end_at_the_border():
    rng = np.random.default_rng(0)
    for _ in range(200):
        tile = int(rng.integers(1, 20)) * 16
        overlap = int(rng.integers(0, tile))
        size = int(rng.integers(1, 2000))
        starts = tile_starts(size, tile, overlap)
        covered = np.zeros(max(size, tile), bool)
        for start in starts:
            covered[start : start + tile] = True
        assert covered[:size].all() and starts[0] == 0
        if size > tile:
            assert starts[-1] == size - tile and all(s + tile <= size for s in starts)
            steps = np.diff(starts)
            assert (steps > 0).all() and (steps <= tile - overlap).all()


def test_blend_window_is_smooth_positive_and_peaks_in_the_centre():
    window = blend_window(64, 48)
    assert window.shape == (64, 48) and window.dtype == np.float32
    assert window.min() >= WINDOW_FLOOR**2 * 0.999 and window.max() <= 1.0
    assert window[32, 24] > 0.99 and window[0, 0] < 0.01
    np.testing.assert_allclose(window, window[::-1, ::-1], atol=1e-7)  # symmetric
    # A tile on the image's top and left border keeps weight 1 out to those edges.
    corner = blend_window(64, 48, borders=(True, False, True, False))
    assert (corner[:32, :24] == 1.0).all() and corner[-1, -1] < 0.01
    np.testing.assert_allclose(corner[32:, 24:], window[32:, 24:])


@pytest.mark.parametrize("seed", range(6))
def test_identity_model_tiles_reproduce_the_image_exactly_at_any_size(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 300, 2))
    tile = int(rng.choice([16, 32, 64]))
    overlap = int(rng.integers(0, tile))
    image = rng.normal(size=(2, height, width)).astype(np.float32)
    model = Identity16()
    output = predict_tiled(
        model, image, tile=tile, overlap=overlap, batch_size=3, activation=None, tta=seed % 2 == 0
    )
    assert output.shape == image.shape and output.dtype == np.float32
    np.testing.assert_allclose(output, image, atol=1e-5)
    # Bounded memory: never more than batch_size tiles of at most tile x tile in one pass.
    assert all(b[0] <= 3 and b[2] <= tile and b[3] <= tile for b in model.batches)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 300), (3, 17, 1), (1, 64, 65)])
def test_identity_model_at_edge_sizes(shape):
    image = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    output = predict_tiled(Identity16(), image, tile=64, overlap=16, activation=None)
    np.testing.assert_allclose(output, image, atol=1e-5)


@pytest.mark.parametrize("activation, classes", [("sigmoid", 1), ("softmax", 3), (None, 2)])
def test_a_pointwise_net_tiled_equals_its_whole_image_output_everywhere(activation, classes):
    rng = np.random.default_rng(classes)
    image = rng.normal(size=(1, 150, 211)).astype(np.float32)
    model = pointwise_net(1, classes, seed=classes)
    tiled = predict_tiled(model, image, tile=64, overlap=16, activation=activation)
    np.testing.assert_allclose(tiled, whole_image(model, image, activation), atol=1e-5)
    if activation == "softmax":
        np.testing.assert_allclose(tiled.sum(axis=0), 1.0, atol=1e-5)


def test_a_real_conv_net_tiled_agrees_with_its_whole_image_prediction_on_512():
    torch.manual_seed(0)
    model = SmallFCN(1, 1, widths=(8, 8, 8), batch_norm=False).eval()
    rng = np.random.default_rng(0)
    # Smooth structure plus noise, so the net's output varies across the image.
    rows, columns = np.mgrid[:512, :512] / 512.0
    image = np.sin(12 * rows) * np.cos(9 * columns) + 0.3 * rng.normal(size=(512, 512))
    image = image[None].astype(np.float32)  # (1, 512, 512)
    tiled = predict_tiled(model, image, tile=128, overlap=32, batch_size=8)
    oracle = whole_image(model, image, "sigmoid")
    interior = (slice(None), slice(3, -3), slice(3, -3))  # 3 convs 3x3: 3 px of image border
    difference = np.abs(tiled - oracle)[interior]
    assert difference.max() < 5e-3 and difference.mean() < 1e-4, (
        difference.max(),
        difference.mean(),
    )
    # The image's own border: its tiles keep full weight there, as the whole image does.
    assert np.abs(tiled - oracle).max() < 5e-3


def test_tta_averages_the_four_flips_un_flipped():
    torch.manual_seed(1)
    # 3x3 convolutions with zero padding: not flip-equivariant, so a wrong un-flip shows.
    model = SmallFCN(1, 1, widths=(4,), batch_norm=False).eval()
    image = np.random.default_rng(1).normal(size=(1, 48, 64)).astype(np.float32)
    output = predict_tiled(model, image, tile=64, overlap=16, tta=True)  # one tile
    oracle = np.mean(
        [
            np.flip(whole_image(model, np.flip(image, dims).copy(), "sigmoid"), dims)
            for dims in [tuple(d + 3 for d in dims) for dims in FLIPS]  # (-1,) -> axis 2
        ],
        axis=0,
    )
    np.testing.assert_allclose(output, oracle, atol=1e-5)
    plain = predict_tiled(model, image, tile=64, overlap=16)
    assert np.abs(plain - output).max() > 1e-4  # the flips did change something


def test_tta_on_a_large_image_equals_tiles_of_the_flipped_images_averaged():
    model = pointwise_net(1, 1, seed=3)
    image = np.random.default_rng(3).normal(size=(1, 100, 140)).astype(np.float32)
    tta = predict_tiled(model, image, tile=32, overlap=8, tta=True)
    # A pointwise net is flip-equivariant: TTA changes nothing but rounding.
    np.testing.assert_allclose(tta, whole_image(model, image, "sigmoid"), atol=1e-5)


def test_small_images_are_padded_and_cropped_and_the_train_mode_is_restored():
    model = SmallFCN(1, 2, widths=(4,), batch_norm=True)
    model.train()
    image = np.random.default_rng(2).normal(size=(1, 5, 7)).astype(np.float32)
    output = predict_tiled(model, image, tile=256, activation="softmax")
    assert output.shape == (2, 5, 7) and np.isfinite(output).all()
    assert model.training  # put back as it was


def test_bad_arguments_and_non_dense_models_are_one_line_errors():
    model = Identity16()
    image = np.zeros((1, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"expected an image array \(C, H, W\)"):
        predict_tiled(model, image[0])
    with pytest.raises(ValueError, match="multiple of 16"):
        predict_tiled(model, image, tile=100)
    with pytest.raises(ValueError, match="overlap must be in"):
        predict_tiled(model, image, tile=32, overlap=32)
    with pytest.raises(ValueError, match="activation must be"):
        predict_tiled(model, image, activation="relu")
    pooled = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(1))
    with pytest.raises(ValueError, match="must keep a tile's size"):
        predict_tiled(pooled, image)
