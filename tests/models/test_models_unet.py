"""The U-Net: any input size in, the same size out; options and their errors."""

from __future__ import annotations

import pytest
import torch

from dlcc.models import build_model
from dlcc.models.common import ModelError
from dlcc.models.unet import ConvBlock, UNet, pad_to_multiple


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("size", [(1, 1), (7, 13), (37, 50), (64, 64)])
def test_output_has_the_input_size_for_odd_sizes(upsampling, residual, size):
    model = UNet(2, 3, depth=3, width=4, residual=residual, upsampling=upsampling).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 2, *size))
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_padding_then_cropping_leaves_a_multiple_sized_input_untouched():
    x = torch.randn(1, 1, 32, 48)
    padded, size = pad_to_multiple(x, 16)
    assert padded is x and size == (32, 48)
    padded, size = pad_to_multiple(torch.randn(1, 1, 33, 5), 16)
    assert padded.shape[-2:] == (48, 16) and size == (33, 5)


def test_every_parameter_gets_a_gradient():
    model = UNet(1, 1, depth=2, width=4, residual=True, upsampling="transpose")
    model(torch.randn(2, 1, 20, 20)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_the_residual_block_adds_its_input():
    block = ConvBlock(3, 3, residual=True).eval()
    plain = ConvBlock(3, 3, residual=False).eval()
    plain.load_state_dict(block.state_dict())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        inner = plain.bn2(plain.conv2(torch.relu(plain.bn1(plain.conv1(x)))))
        assert torch.allclose(block(x), torch.relu(inner + x), atol=1e-6)
        assert torch.allclose(plain(x), torch.relu(inner), atol=1e-6)


def test_width_and_depth_set_the_channels():
    model = UNet(1, 2, depth=3, width=8)
    assert [down.block.conv2.out_channels for down in model.downs] == [16, 32, 64]
    assert model.head.in_channels == 8 and model.head.out_channels == 2


def test_the_registry_builds_it_as_a_dense_model():
    model = build_model("unet", (1, 30, 30), 1, depth=2, width=4)
    assert model(torch.randn(1, 1, 30, 30)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"upsampling": "nearest"}, "bilinear, transpose"),
        ({"depth": 0}, "depth"),
        ({"width": -1}, "width"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(ModelError, match=message):
        UNet(1, 1, **options)


def test_a_wrong_channel_count_names_the_model_and_the_shapes():
    with pytest.raises(ModelError, match=r"UNet: expected images of shape \(N, 1, H, W\)"):
        UNet(1, 1, depth=1, width=2)(torch.randn(1, 3, 8, 8))
