"""gradcheck: passes correct backward passes, catches wrong ones, and says where."""

import numpy as np
import pytest

from dlcc.numpy_nn.gradcheck import GradcheckResult, gradcheck, numerical_gradient
from dlcc.numpy_nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from dlcc.numpy_nn.module import Module, default_rng


class Scale(Module):
    """y = x * weight + bias, with weight and bias of shape (D,); x (N, D).

    ``weight_error`` / ``input_error`` multiply the corresponding gradients, to make a
    deliberately wrong backward; ``overwrite`` assigns grads instead of adding.
    """

    def __init__(self, features=4, dtype=np.float64, weight_error=1.0, input_error=1.0):
        super().__init__()
        rng = np.random.default_rng(0)
        self.add_param("weight", rng.standard_normal(features).astype(dtype))
        self.add_param("bias", rng.standard_normal(features).astype(dtype))
        self.weight_error, self.input_error = weight_error, input_error
        self.overwrite = False

    def forward(self, x):
        self.input = x
        return x * self.params["weight"] + self.params["bias"]

    def backward(self, grad_out):
        grad_weight = (grad_out * self.input).sum(axis=0) * self.weight_error
        if self.overwrite:
            self.grads["weight"][...] = grad_weight
        else:
            self.grads["weight"] += grad_weight
        self.grads["bias"] += grad_out.sum(axis=0)
        return grad_out * self.params["weight"] * self.input_error


class Tanh(Module):
    """A parameter-free module."""

    def forward(self, x):
        self.output = np.tanh(x)
        return self.output

    def backward(self, grad_out):
        return grad_out * (1 - self.output**2)


class RandomMask(Module):
    """Dropout-like: a fresh random mask from the library generator at every forward."""

    def forward(self, x):
        self.mask = default_rng().random(x.shape) > 0.5
        return x * self.mask

    def backward(self, grad_out):
        return grad_out * self.mask


def random_input(shape=(3, 4), seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def test_passes_a_correct_module_and_checks_input_and_every_parameter():
    module, x = Scale(), random_input()
    x_before, weight_before = x.copy(), module.params["weight"].copy()
    result = gradcheck(module, x)
    assert isinstance(result, GradcheckResult)
    assert result.ok, str(result)
    assert set(result.worst) == {"input", "weight", "bias"}
    assert result.max_rel_error < 1e-7
    assert "gradients match" in str(result)
    # nothing is left changed: input, parameters; grads are zeroed
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(module.params["weight"], weight_before)
    assert not module.grads["weight"].any()


@pytest.mark.parametrize("factor", [1.01, 2.0, -1.0, 0.0])
def test_catches_a_wrong_parameter_gradient_and_names_it(factor):
    result = gradcheck(Scale(weight_error=factor), random_input())
    assert not result.ok
    assert result.failed() == ["weight"]
    assert result.worst["bias"][0] < 1e-7 and result.worst["input"][0] < 1e-7
    message = str(result)
    assert message.startswith(
        "Scale.backward: grad of weight differs from the numerical gradient, max rel. error"
    )
    error, index = result.worst["weight"]
    assert f"at index {index}" in message and len(index) == 1
    assert error == result.max_rel_error
    analytic, numerical = result.values["weight"]
    assert analytic == pytest.approx(factor * numerical, abs=1e-7)


def test_catches_a_wrong_input_gradient():
    result = gradcheck(Scale(input_error=0.5), random_input())
    assert not result.ok and result.failed() == ["input"]
    assert "grad of input differs" in str(result)
    assert len(result.worst["input"][1]) == 2  # an index into the (N, D) input


def test_catches_a_backward_that_overwrites_grads():
    module = Scale()
    module.overwrite = True
    result = gradcheck(module, random_input())
    assert not result.ok
    assert result.worst["weight"][0] < 1e-7  # the gradient itself is right
    assert "grad of weight is overwritten instead of accumulated" in str(result)


def test_sampling_checks_only_k_elements_per_tensor():
    calls = []

    class CountingTanh(Tanh):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    result = gradcheck(CountingTanh(), random_input((20, 30)), sample=7)
    assert result.ok, str(result)
    assert len(calls) == 1 + 2 * 7  # one analytic forward, two per sampled element


def test_same_random_draws_at_every_forward():
    result = gradcheck(RandomMask(), random_input((5, 6)))
    assert result.ok, str(result)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("loss_fn", "make_target"),
    [
        (CrossEntropyLoss(), lambda rng, shape: rng.integers(0, shape[1], shape[0])),
        (
            CrossEntropyLoss("sum", label_smoothing=0.2),
            lambda rng, shape: rng.integers(0, shape[1], shape[0]),
        ),
        (MSELoss(), lambda rng, shape: rng.standard_normal(shape)),
        (BCEWithLogitsLoss("sum"), lambda rng, shape: rng.random(shape)),
    ],
)
def test_losses_pass(loss_fn, make_target, seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 8)), int(rng.integers(2, 6)))
    logits = rng.standard_normal(shape) * 3
    result = gradcheck(loss_fn, (logits, make_target(rng, shape)))
    assert result.ok, str(result)
    assert list(result.worst) == ["input"]


def test_catches_a_wrong_loss_backward():
    class HalfMSE(MSELoss):
        def backward(self):
            return super().backward() * 0.5

    rng = np.random.default_rng(0)
    result = gradcheck(HalfMSE(), (rng.standard_normal((3, 2)), rng.standard_normal((3, 2))))
    assert not result.ok
    assert str(result).startswith("HalfMSE.backward: grad of input differs")


def test_refuses_float32():
    with pytest.raises(
        ValueError, match=r"parameter 'weight' of Scale is float32.*dtype=np.float64"
    ):
        gradcheck(Scale(dtype=np.float32), random_input())
    with pytest.raises(ValueError, match=r"the input is float32.*astype\(np.float64\)"):
        gradcheck(Scale(), random_input().astype(np.float32))
    with pytest.raises(ValueError, match=r"the logits is float32"):
        gradcheck(MSELoss(), (np.zeros(3, np.float32), np.zeros(3, np.float32)))


def test_rejects_a_backward_of_the_wrong_shape():
    class Broken(Tanh):
        def backward(self, grad_out):
            return grad_out.sum(axis=0)

    with pytest.raises(ValueError, match=r"Broken.backward must return .* shape \(3, 4\)"):
        gradcheck(Broken(), random_input())


def test_numerical_gradient_of_a_quadratic():
    weights = np.array([[1.0, -2.0], [0.5, 3.0]])
    gradient = numerical_gradient(lambda: float((weights**2).sum()), weights)
    np.testing.assert_allclose(gradient, 2 * weights, rtol=1e-8)


def test_library_linear_layers():
    layers = pytest.importorskip("dlcc.numpy_nn.layers")
    if not hasattr(layers, "Linear"):
        pytest.skip("dlcc.numpy_nn.layers.Linear is not written yet")
    x = random_input((5, 3))
    assert gradcheck(layers.Linear(3, 4, dtype=np.float64), x).ok
    if hasattr(layers, "Sequential") and hasattr(layers, "Dropout"):
        model = layers.Sequential(
            layers.Linear(3, 6, dtype=np.float64),
            layers.Dropout(0.5),
            layers.Linear(6, 2, dtype=np.float64),
        )
        result = gradcheck(model, x)
        assert result.ok, str(result)
        assert set(result.worst) == {"input", "0.weight", "0.bias", "2.weight", "2.bias"}


def test_a_backward_that_assigns_new_grad_arrays_is_told_to_use_plus_equals_first():
    """`grads["weight"] = ...` (a new array, not `+=`) leaves the arrays the optimiser holds
    at zero: the message says so first, where a one-line feedback keeps it."""
    from dlcc.numpy_nn import Linear

    class AssigningLinear(Linear):
        def backward(self, grad_out):
            self.grads["weight"] = grad_out.T @ self.input
            self.grads["bias"] = grad_out.sum(axis=0)
            return grad_out @ self.params["weight"]

    result = gradcheck(AssigningLinear(5, 3, dtype=np.float64), random_input((4, 5)))
    assert not result.ok
    assert str(result).startswith(
        "AssigningLinear.backward: use += for the grads: grads['weight'] was assigned a new array"
    )
