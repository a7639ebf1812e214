"""Parameter counts (against hand counts and the published ResNet-20 size) and the
initial weight statistics of every model."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from dlcc.models import MLP, PreActBlock, SmallCNN, build_model, count_parameters  # noqa: E402

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


def conv_params(in_channels, out_channels, kernel=3, groups=1):
    return out_channels * (in_channels // groups) * kernel * kernel


def bn_params(channels):
    return 2 * channels


def linear_params(in_features, out_features):
    return in_features * out_features + out_features


@pytest.mark.parametrize("shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
def test_mlp_parameter_count(shape):
    inputs = math.prod(shape)
    expected = linear_params(inputs, 512) + linear_params(512, 256) + linear_params(256, 10)
    assert count_parameters(build_model("mlp", shape, 10)) == expected


@pytest.mark.parametrize("in_channels", [1, 3])
def test_small_cnn_parameter_count(in_channels):
    def block(cin, cout):
        return conv_params(cin, cout) + bn_params(cout)

    expected = block(in_channels, 32) + block(32, 64) + block(64, 128) + linear_params(128, 10)
    assert count_parameters(SmallCNN(in_channels, 10)) == expected


@pytest.mark.parametrize("blocks_per_stage", [1, 2])
def test_depthwise_small_cnn_is_several_times_smaller(blocks_per_stage):
    standard = SmallCNN(3, 10, blocks_per_stage=blocks_per_stage)
    depthwise = SmallCNN(3, 10, blocks_per_stage=blocks_per_stage, depthwise=True)
    assert count_parameters(depthwise) * 4 < count_parameters(standard)

    def separable(cin, cout):
        return (conv_params(cin, cin, 3, groups=cin) + bn_params(cin)
                + conv_params(cin, cout, 1) + bn_params(cout))  # fmt: skip

    if blocks_per_stage == 1:
        expected = (conv_params(3, 32) + bn_params(32) + separable(32, 64)
                    + separable(64, 128) + linear_params(128, 10))  # fmt: skip
        assert count_parameters(depthwise) == expected


def test_resnet20_has_the_published_size():
    # He et al. 2015, table 6: ResNet-20 on CIFAR-10 has 0.27M parameters.
    model = build_model("resnet20", CIFAR, 10)
    assert 260_000 <= count_parameters(model) <= 280_000
    weighted = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    shortcuts = [m for m in model.modules() if isinstance(m, PreActBlock) and m.shortcut]
    assert len(weighted) - len(shortcuts) == 20  # 6n + 2 with n = 3


def test_preact_resnet_defaults_are_resnet18_sized():
    assert 11_000_000 < count_parameters(build_model("preact_resnet", CIFAR, 10)) < 11_300_000


def test_count_parameters_trainable_only():
    model = MLP(4, 2, hidden=(3,))
    model[1].requires_grad_(False)  # freeze the first Linear: 4 * 3 + 3 parameters
    assert count_parameters(model) == 3 * 2 + 2
    assert count_parameters(model, trainable_only=False) == 15 + 8


CONV_NETS = [
    ("small_cnn", {}),
    ("small_cnn", {"depthwise": True, "blocks_per_stage": 2}),
    ("preact_resnet", {"widths": (32, 64), "blocks": (1, 1)}),
    ("resnet20", {}),
]


@pytest.mark.parametrize("name, options", CONV_NETS)
def test_conv_weights_are_he_normal_with_fan_out(name, options):
    torch.manual_seed(0)
    model = build_model(name, CIFAR, 10, **options)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs
    for conv in convs:
        weight = conv.weight.detach().double()
        out_channels, _, kernel_height, kernel_width = weight.shape
        # each input value reaches out_channels / groups outputs through kh * kw taps
        fan_out = out_channels // conv.groups * kernel_height * kernel_width
        expected_std = math.sqrt(2.0 / fan_out)
        # the std of n normal draws is within a few times std / sqrt(2n) of the truth
        tolerance = 5 * expected_std / math.sqrt(2 * weight.numel())
        assert abs(weight.std().item() - expected_std) < tolerance, (conv, weight.std())
        assert abs(weight.mean().item()) < 5 * expected_std / math.sqrt(weight.numel())
        assert conv.bias is None  # BN follows (or, in a pre-activation net, precedes) it


@pytest.mark.parametrize("name, options", CONV_NETS)
def test_linear_is_xavier_uniform_and_batchnorm_is_identity(name, options):
    torch.manual_seed(0)
    model = build_model(name, CIFAR, 10, **options)
    (head,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    bound = math.sqrt(6.0 / (head.in_features + head.out_features))
    weight = head.weight.detach()
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.95 * bound  # uniform on [-bound, bound], hundreds of draws
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    assert torch.count_nonzero(head.bias) == 0
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    for norm in norms:
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_he_init_keeps_activations_from_vanishing():
    # The point of He init: at depth 20, the signal still has unit-order size.
    torch.manual_seed(0)
    model = build_model("resnet20", CIFAR, 10).eval()
    with torch.no_grad():
        features = model.stages(model.stem(torch.randn(8, *CIFAR)))
    assert 0.1 < features.std().item() < 100


def test_mlp_loads_a_numpy_nn_state_dict():
    # dlcc.numpy_nn.models.mlp has the same layer list, so its weights move across.
    from dlcc.numpy_nn.models import mlp as numpy_mlp

    numpy_model = numpy_mlp(MNIST, 10, hidden=(32, 16), dropout=0.5)
    numpy_model.eval()
    model = MLP(MNIST, 10, hidden=(32, 16), dropout=0.5).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in numpy_model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, *MNIST)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, numpy_model(x), rtol=1e-5, atol=1e-5)
