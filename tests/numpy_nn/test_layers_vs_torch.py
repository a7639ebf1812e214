"""Every layer's forward and backward against torch.nn, on many random configurations.

In the style of numpy-ml: draw shapes and hyper-parameters at random (seeded), build the
same layer in both libraries with the same weights, and compare outputs and all gradients.
float64 must agree to ~1e-10; float32 to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlcc.numpy_nn as nn

torch = pytest.importorskip("torch")

TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def compare_with_torch(np_layer, torch_layer, x, dtype, upstream_seed=0):
    """Run both layers forward and backward on the same input and upstream gradient."""
    torch_layer = torch_layer.to(TORCH_DTYPE[dtype])
    np_layer.load_state_dict(torch_layer.state_dict())
    x = x.astype(dtype)
    x_torch = torch.tensor(x, requires_grad=True)

    out = np_layer.forward(x)
    out_torch = torch_layer(x_torch)
    tol = TOLERANCE[dtype]
    assert out.shape == tuple(out_torch.shape)
    assert out.dtype == dtype, f"{np_layer!r} changed the dtype to {out.dtype}"
    np.testing.assert_allclose(out, out_torch.detach().numpy(), **tol, err_msg="forward")

    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape).astype(dtype)
    np_layer.zero_grad()
    grad_in = np_layer.backward(upstream)
    torch_layer.zero_grad()
    out_torch.backward(torch.tensor(upstream))
    assert grad_in.dtype == dtype
    np.testing.assert_allclose(grad_in, x_torch.grad.numpy(), **tol, err_msg="grad of input")
    for name, param in torch_layer.named_parameters():
        np.testing.assert_allclose(
            np_layer.grads[name], param.grad.numpy(), **tol, err_msg=f"grad of {name}"
        )
        assert np_layer.grads[name].dtype == dtype
    for name, buffer in torch_layer.named_buffers():
        np.testing.assert_allclose(
            np_layer.state_dict()[name], buffer.numpy(), **tol, err_msg=f"buffer {name}"
        )


def random_conv_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kernel = (int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 2, 3])))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        height, width = int(rng.integers(3, 12)), int(rng.integers(3, 12))  # non-square
        if height + 2 * padding[0] < kernel[0] or width + 2 * padding[1] < kernel[1]:
            continue
        configs.append(
            dict(
                batch=int(rng.choice([1, 2, 3])),
                in_channels=int(rng.integers(1, 5)),
                out_channels=int(rng.integers(1, 6)),
                kernel=kernel,
                stride=stride,
                padding=padding,
                size=(height, width),
                bias=bool(rng.random() < 0.8),
            )
        )
    return configs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", random_conv_configs(40, seed=1), ids=lambda c: str(c))
def test_conv2d_matches_torch(config, dtype):
    args = (config["in_channels"], config["out_channels"], config["kernel"])
    kwargs = dict(stride=config["stride"], padding=config["padding"], bias=config["bias"])
    x = np.random.default_rng(2).standard_normal(
        (config["batch"], config["in_channels"], *config["size"])
    )
    compare_with_torch(
        nn.Conv2d(*args, **kwargs, dtype=dtype), torch.nn.Conv2d(*args, **kwargs), x, dtype
    )


@pytest.mark.parametrize(
    "stride,padding,size", [(1, 0, (7, 9)), (2, 1, (8, 8)), (2, 2, (5, 11)), (1, 1, (1, 1))]
)
def test_conv2d_square_kernel_cases(stride, padding, size):
    """The cases the issue names: stride 2, padding 0/1/2, non-square, batch size 1."""
    x = np.random.default_rng(3).standard_normal((1, 3, *size))
    kernel = 3 if min(size) + 2 * padding >= 3 else 1
    compare_with_torch(
        nn.Conv2d(3, 4, kernel, stride=stride, padding=padding, dtype=np.float64),
        torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding),
        x,
        np.float64,
    )


def random_pool_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = (
            int(rng.integers(0, kernel[0] // 2 + 1)),
            int(rng.integers(0, kernel[1] // 2 + 1)),
        )
        size = (int(rng.integers(kernel[0], 10)), int(rng.integers(kernel[1], 10)))
        configs.append(dict(kernel=kernel, stride=stride, padding=padding, size=size))
    return configs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", random_pool_configs(30, seed=4), ids=lambda c: str(c))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(kind, config, dtype):
    np_class, torch_class = {
        "max": (nn.MaxPool2d, torch.nn.MaxPool2d),
        "avg": (nn.AvgPool2d, torch.nn.AvgPool2d),
    }[kind]
    kwargs = dict(kernel_size=config["kernel"], stride=config["stride"], padding=config["padding"])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, *config["size"]))
    compare_with_torch(np_class(**kwargs), torch_class(**kwargs), x, dtype)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 1), (3, 2)])
def test_maxpool_routes_ties_like_torch(kernel, stride):
    """After ReLU many windows hold equal maxima; torch sends the gradient to the first."""
    x = np.random.default_rng(6).integers(0, 3, size=(2, 4, 9, 8)).astype(np.float64)
    compare_with_torch(
        nn.MaxPool2d(kernel, stride), torch.nn.MaxPool2d(kernel, stride), x, np.float64
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 5, 32])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(batch, bias, dtype):
    rng = np.random.default_rng(batch)
    in_features, out_features = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    x = rng.standard_normal((batch, in_features))
    compare_with_torch(
        nn.Linear(in_features, out_features, bias=bias, dtype=dtype),
        torch.nn.Linear(in_features, out_features, bias=bias),
        x,
        dtype,
    )


def test_linear_accepts_extra_leading_dims():
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    compare_with_torch(nn.Linear(5, 4, dtype=np.float64), torch.nn.Linear(5, 4), x, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "np_class,torch_class",
    [
        (nn.ReLU, torch.nn.ReLU),
        (nn.Sigmoid, torch.nn.Sigmoid),
        (nn.Tanh, torch.nn.Tanh),
        (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
        (nn.Flatten, torch.nn.Flatten),
    ],
)
def test_activations_match_torch(np_class, torch_class, dtype):
    x = np.random.default_rng(7).standard_normal((3, 2, 4, 5)) * 5
    x[0, 0, 0, :3] = [0.0, 1e4, -1e4]  # the kink and saturation, no overflow warnings
    compare_with_torch(np_class(), torch_class(), x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "np_class,torch_class,shape",
    [
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 7)),
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (1, 2, 3, 3)),
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 5)),
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 6)),
    ],
)
def test_batchnorm_matches_torch_in_train_and_eval(np_class, torch_class, shape, dtype):
    channels = shape[1]
    torch_layer = torch_class(channels)
    with torch.no_grad():  # non-trivial affine parameters
        torch_layer.weight.uniform_(0.5, 1.5)
        torch_layer.bias.uniform_(-0.5, 0.5)
    np_layer = np_class(channels, dtype=dtype)
    rng = np.random.default_rng(8)
    for step in range(3):  # running statistics accumulate over steps
        x = rng.standard_normal(shape) * 2 + 1
        compare_with_torch(np_layer, torch_layer, x, dtype, upstream_seed=step)
    np_layer.eval()
    torch_layer.eval()
    compare_with_torch(np_layer, torch_layer, rng.standard_normal(shape), dtype)


def test_batchnorm_running_stats_track_torch_over_many_steps():
    np_layer, torch_layer = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    rng = np.random.default_rng(9)
    for _ in range(10):
        x = (rng.standard_normal((8, 3, 4, 4)) * 3 + 2).astype(np.float32)
        np_layer.forward(x)
        torch_layer(torch.tensor(x))
    for name in ["running_mean", "running_var", "num_batches_tracked"]:
        np.testing.assert_allclose(
            np_layer.buffers[name], getattr(torch_layer, name).numpy(), rtol=1e-5
        )


def test_dropout_statistics_and_mask_reuse():
    nn.manual_seed(0)
    layer = nn.Dropout(0.3)
    x = np.ones((200, 500), dtype=np.float32)
    out = layer.forward(x)
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)  # inverted scaling
    grad = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(grad, out)  # same mask, same scale
    layer.eval()
    assert layer.forward(x) is x


def test_dropout_is_reproducible_with_manual_seed():
    x = np.ones((10, 10), dtype=np.float32)
    nn.manual_seed(3)
    first = nn.Dropout(0.5).forward(x)
    nn.manual_seed(3)
    np.testing.assert_array_equal(nn.Dropout(0.5).forward(x), first)


def course_cnn(lib, dtype):
    """The same small CNN in either library (``lib`` is dlcc.numpy_nn or torch.nn)."""
    return lib.Sequential(
        lib.Conv2d(1, 8, 3, padding=1, dtype=dtype),
        lib.BatchNorm2d(8, dtype=dtype),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(8, 16, 3, stride=2, padding=1, dtype=dtype),
        lib.ReLU(),
        lib.AvgPool2d(2),
        lib.Flatten(),
        lib.Linear(16 * 2 * 2, 10, dtype=dtype),
    )


def test_torch_state_dict_loads_into_numpy_model_and_back():
    """torch -> NumPy -> torch gives the same outputs, with identical keys and shapes."""
    torch.manual_seed(0)
    torch_model = course_cnn(torch.nn, torch.float64)
    x = np.random.default_rng(10).standard_normal((4, 1, 16, 16))
    for _ in range(2):  # make the running statistics non-trivial
        torch_model(torch.tensor(x))
    torch_model.eval()

    np_model = course_cnn(nn, np.float64).eval()
    assert {k: v.shape for k, v in np_model.state_dict().items()} == {
        k: tuple(v.shape) for k, v in torch_model.state_dict().items()
    }
    np_model.load_state_dict(torch_model.state_dict())
    expected = torch_model(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(np_model(x), expected, rtol=1e-10, atol=1e-12)

    back = course_cnn(torch.nn, torch.float64).eval()
    back.load_state_dict({k: torch.tensor(v) for k, v in np_model.state_dict().items()})
    np.testing.assert_allclose(
        back(torch.tensor(x)).detach().numpy(), np_model(x), rtol=1e-10, atol=1e-12
    )


def test_gradients_accumulate_like_torch_until_zero_grad():
    layer = nn.Linear(3, 2, dtype=np.float64)
    x = np.ones((4, 3))
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    once = layer.grads["weight"].copy()
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    np.testing.assert_allclose(layer.grads["weight"], 2 * once)
    layer.zero_grad()
    assert not layer.grads["weight"].any()


def test_in_place_parameter_write_takes_effect():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    layer.forward(x)
    layer.params["weight"][...] = 0
    layer.params["bias"][...] = 1.5
    np.testing.assert_array_equal(layer.forward(x), np.full((1, 3, 5, 5), 1.5, np.float32))


def test_parameters_are_stable_references_for_optimisers():
    model = course_cnn(nn, np.float32)
    pairs = model.parameters()
    pairs[0][0][...] = 7.0
    assert (model[0].params["weight"] == 7.0).all()
    assert model.num_parameters() == sum(p.size for p, _ in pairs)


@pytest.mark.parametrize(
    "layer,x,message",
    [
        (
            nn.Conv2d(3, 4, 3),
            np.zeros((2, 1, 8, 8), np.float32),
            r"Conv2d.*\(N, 3, H, W\).*\(2, 1, 8, 8\)",
        ),
        (nn.Conv2d(3, 4, 3), np.zeros((3, 8, 8), np.float32), r"Conv2d.*got \(3, 8, 8\)"),
        (nn.Conv2d(1, 4, 5), np.zeros((1, 1, 3, 3), np.float32), r"smaller than the kernel"),
        (nn.Linear(5, 2), np.zeros((4, 6), np.float32), r"Linear.*\(N, 5\).*\(4, 6\)"),
        (nn.Linear(5, 2), np.zeros((4, 5)), r"Linear.*float32.*float64.*astype"),
        (nn.Linear(5, 2), np.zeros((4, 5), np.uint8), r"Linear.*float32.*uint8"),
        (nn.Linear(5, 2), [[0.0] * 5], r"Linear.*NumPy array.*list"),
        (nn.BatchNorm2d(3), np.zeros((4, 2, 3, 3), np.float32), r"BatchNorm2d.*\(N, 3, H, W\)"),
        (nn.BatchNorm1d(3), np.zeros((1, 3), np.float32), r"more than one value per channel"),
        (nn.MaxPool2d(2), np.zeros((4, 3), np.float32), r"MaxPool2d.*\(N, C, H, W\)"),
        (
            nn.MaxPool2d(2),
            np.zeros((1, 1, 4, 4), np.uint8),
            r"MaxPool2d.*float32 or float64.*uint8",
        ),
    ],
)
def test_bad_input_names_the_module_and_what_was_expected(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(x)


def test_load_state_dict_reports_mismatches():
    model = course_cnn(nn, np.float32)
    state = model.state_dict()
    state["0.weight"] = np.zeros((8, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"0\.weight.*\(8, 1, 5, 5\).*\(8, 1, 3, 3\)"):
        model.load_state_dict(state)
    del state["0.weight"]
    with pytest.raises(ValueError, match=r"missing=\['0\.weight'\]"):
        model.load_state_dict(state)


def test_constructors_reject_bad_hyper_parameters():
    with pytest.raises(ValueError, match="dtype"):
        nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="padding"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="Sequential"):
        nn.Sequential(nn.ReLU(), "relu")
