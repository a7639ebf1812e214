"""build_model by name: valid names and options, and one-line errors for everything else."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dlcc.errors import DlccError  # noqa: E402
from dlcc.models import (  # noqa: E402
    MLP,
    ModelError,
    PreActResNet,
    SmallCNN,
    build_model,
    model_names,
    model_options,
)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_model_names():
    assert model_names("classes") == ["mlp", "preact_resnet", "resnet20", "small_cnn"]
    assert model_names() == ["beatnet", "char_gpt", "char_rnn", "mlp", "preact_resnet", "resnet20",
                             "small_cnn", "small_fcn", "unet"]  # fmt: skip
    assert model_names("sequence") == ["char_gpt", "char_rnn"]
    assert model_names("dense") == ["small_fcn", "unet"]
    assert model_names("signal") == ["beatnet"]


@pytest.mark.parametrize(
    "name, expected_type",
    [("mlp", MLP), ("small_cnn", SmallCNN), ("preact_resnet", PreActResNet),
     ("resnet20", PreActResNet)],
)  # fmt: skip
def test_build_model_returns_the_named_class(name, expected_type):
    assert type(build_model(name, (3, 32, 32), 10)) is expected_type


def test_model_options_lists_keyword_arguments_and_defaults():
    assert model_options("small_cnn") == {
        "widths": (32, 64, 128),
        "blocks_per_stage": 1,
        "depthwise": False,
        "dropout": 0.0,
    }
    assert model_options("resnet20") == {}


def test_options_from_yaml_lists_are_accepted():
    model = build_model("preact_resnet", (1, 28, 28), 3, widths=[8, 16], blocks=[1, 2])
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ModelError) as error:
        build_model("smal_cnn", (3, 32, 32), 10)
    message = one_line(error)
    assert "'smal_cnn'" in message and "did you mean 'small_cnn'" in message
    assert "mlp, preact_resnet, resnet20, small_cnn" in message
    assert issubclass(ModelError, DlccError)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ModelError) as error:
        build_model("small_cnn", (3, 32, 32), 10, depth_wise=True)
    message = one_line(error)
    assert "'depth_wise'" in message and "did you mean 'depthwise'" in message
    assert "widths, blocks_per_stage, depthwise, dropout" in message
    with pytest.raises(ModelError, match="Valid options: none"):
        build_model("resnet20", (3, 32, 32), 10, widths=(8,))


@pytest.mark.parametrize(
    "name, in_shape, num_classes, options, fragment",
    [
        ("mlp", (28, 28), 10, {}, "expected in_shape (C, H, W)"),
        ("mlp", (1, 0, 28), 10, {}, "positive integer"),
        ("mlp", "1x28x28", 10, {}, "list of positive integers"),
        ("mlp", (1, 28, 28), 0, {}, "num_classes"),
        ("mlp", (1, 28, 28), 10, {"dropout": 1.0}, "probability in [0, 1)"),
        ("mlp", (1, 28, 28), 10, {"hidden": [64, -1]}, "hidden entry"),
        ("small_cnn", (3, 32, 32), 10, {"widths": []}, "non-empty list"),
        ("small_cnn", (3, 32, 32), 10, {"blocks_per_stage": 0}, "blocks_per_stage"),
        ("small_cnn", (3, 32, 32), 10, {"depthwise": "yes"}, "true or false"),
        ("preact_resnet", (3, 32, 32), 10, {"widths": [8, 16], "blocks": [1]}, "same length"),
        ("preact_resnet", (3, 32, 32), 10, {"blocks": [2.5, 2, 2, 2]}, "blocks entry"),
    ],
)
def test_bad_arguments_raise_model_error(name, in_shape, num_classes, options, fragment):
    with pytest.raises(ModelError) as error:
        build_model(name, in_shape, num_classes, **options)
    assert fragment in one_line(error)


@pytest.mark.parametrize("name", ["small_cnn", "preact_resnet", "resnet20"])
def test_conv_nets_explain_a_wrong_input(name):
    model = build_model(name, (3, 32, 32), 10)
    with pytest.raises(ModelError, match=r"expected images of shape \(N, 3, H, W\).*unsqueeze"):
        model(torch.zeros(3, 32, 32))  # one image without its batch axis
    with pytest.raises(ModelError, match=r"received \(2, 1, 32, 32\).*in_channels=1"):
        model(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ModelError, match=r"floating-point.*x\.float\(\)"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ModelError, match=r"expected a torch\.Tensor"):
        model([[0.0]])


def test_mlp_explains_a_wrong_input():
    model = build_model("mlp", (1, 28, 28), 10)
    with pytest.raises(ModelError, match=r"784 values per sample, received \(2, 1, 32, 32\)"):
        model(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ModelError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.int64))
    assert model(torch.zeros(2, 784)).shape == (2, 10)  # already flat is fine
