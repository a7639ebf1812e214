"""Optimisers against torch.optim: same random params, same random gradient sequence,
random hyperparameters drawn per seed (numpy-ml style)."""

import inspect
import io

import numpy as np
import pytest
from numpy_nn_helpers import DtypeRecorder

torch = pytest.importorskip("torch")

from dlcc.numpy_nn import optim  # noqa: E402
from dlcc.numpy_nn.module import Module  # noqa: E402


def log_uniform(rng, low, high):
    return float(10 ** rng.uniform(np.log10(low), np.log10(high)))


def maybe(rng, value, probability=0.5):
    return value if rng.random() < probability else 0.0


def draw_sgd(rng):
    momentum = maybe(rng, float(rng.uniform(0.1, 0.99)), 0.7)
    nesterov = bool(momentum > 0 and rng.random() < 0.5)
    return {
        "lr": log_uniform(rng, 1e-3, 0.3),
        "momentum": momentum,
        "nesterov": nesterov,
        "dampening": 0.0 if nesterov else maybe(rng, float(rng.uniform(0, 0.5))),
        "weight_decay": maybe(rng, log_uniform(rng, 1e-4, 0.1)),
    }


def draw_adam(rng):
    return {
        "lr": log_uniform(rng, 1e-4, 0.1),
        "betas": (float(rng.uniform(0.5, 0.99)), float(rng.uniform(0.9, 0.9999))),
        "eps": log_uniform(rng, 1e-10, 1e-6),
        "weight_decay": maybe(rng, log_uniform(rng, 1e-4, 0.1)),
    }


def draw_rmsprop(rng):
    return {
        "lr": log_uniform(rng, 1e-4, 0.05),
        "alpha": float(rng.uniform(0.8, 0.999)),
        "eps": log_uniform(rng, 1e-10, 1e-6),
        "momentum": maybe(rng, float(rng.uniform(0.1, 0.95))),
        "weight_decay": maybe(rng, log_uniform(rng, 1e-4, 0.1)),
        "centered": bool(rng.random() < 0.5),
    }


OPTIMIZERS = {
    "SGD": (optim.SGD, torch.optim.SGD, draw_sgd),
    "Adam": (optim.Adam, torch.optim.Adam, draw_adam),
    "AdamW": (optim.AdamW, torch.optim.AdamW, draw_adam),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop, draw_rmsprop),
}
# (rtol, atol) on the parameters after each step
TOLERANCES = {np.float64: (1e-9, 1e-12), np.float32: (1e-4, 1e-5)}


class TwinRun:
    """Our optimiser and torch's on identical copies of random parameters."""

    def __init__(self, name, kwargs, dtype, seed):
        ours_class, torch_class, _ = OPTIMIZERS[name]
        self.rng = np.random.default_rng(seed)
        shapes = [
            tuple(int(n) for n in self.rng.integers(1, 5, size=self.rng.integers(1, 4)))
            for _ in range(self.rng.integers(1, 4))
        ]
        self.params = [self.rng.standard_normal(shape).astype(dtype) for shape in shapes]
        self.grads = [np.zeros_like(param) for param in self.params]
        self.torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in self.params]
        self.optimizer = ours_class(list(zip(self.params, self.grads, strict=True)), **kwargs)
        self.torch_optimizer = torch_class(self.torch_params, **kwargs)
        self.dtype = dtype

    def step(self):
        for grad, torch_param in zip(self.grads, self.torch_params, strict=True):
            new_grad = self.rng.standard_normal(grad.shape).astype(self.dtype)
            grad[...] = new_grad
            torch_param.grad = torch.tensor(new_grad)
        grads_before = [grad.copy() for grad in self.grads]
        self.optimizer.step()
        self.torch_optimizer.step()
        for grad, before in zip(self.grads, grads_before, strict=True):
            np.testing.assert_array_equal(grad, before)  # torch leaves .grad alone too

    def set_lr(self, lr):
        self.optimizer.lr = lr
        for group in self.torch_optimizer.param_groups:
            group["lr"] = lr

    def assert_close(self, step):
        rtol, atol = TOLERANCES[self.dtype]
        for param, torch_param in zip(self.params, self.torch_params, strict=True):
            assert param.dtype == self.dtype
            np.testing.assert_allclose(
                param, torch_param.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"step {step}"
            )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_matches_torch_over_20_steps(name, dtype, seed):
    kwargs = OPTIMIZERS[name][2](np.random.default_rng(1000 + seed))
    run = TwinRun(name, kwargs, dtype, seed)
    for step in range(20):
        if step == 10:  # as a schedule would
            run.set_lr(run.optimizer.lr * 0.5)
        run.step()
        run.assert_close(step)
    for key, value in run.optimizer.state_dict().items():
        if key.startswith("state."):
            assert value.dtype == dtype, key


# Every branch of every update rule, in case the random draws above miss one.
CORNER_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0}),
    ("RMSprop", {"momentum": 0.9, "weight_decay": 0.01, "centered": True}),
    ("RMSprop", {"momentum": 0.9, "centered": False}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "kwargs"), CORNER_CASES)
def test_every_branch_matches_torch(name, kwargs, dtype):
    run = TwinRun(name, kwargs, dtype, seed=5)
    for step in range(20):
        run.step()
        run.assert_close(step)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_through_npz_resumes_exactly(name):
    kwargs = OPTIMIZERS[name][2](np.random.default_rng(7))
    if name == "SGD":
        kwargs["momentum"] = 0.9  # so that there is state to save
    run = TwinRun(name, kwargs, np.float32, seed=3)
    for _ in range(7):
        run.step()

    state = run.optimizer.state_dict()
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items())
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    loaded = dict(np.load(buffer))

    ours_class = OPTIMIZERS[name][0]
    resumed_params = [param.copy() for param in run.params]
    resumed_grads = [np.zeros_like(param) for param in run.params]
    other_kwargs = dict(kwargs, lr=123.0)  # lr and hyperparameters come from the state
    resumed = ours_class(list(zip(resumed_params, resumed_grads, strict=True)), **other_kwargs)
    resumed.load_state_dict(loaded)
    assert resumed.lr == run.optimizer.lr and resumed.step_count == 7

    for _ in range(7):
        run.step()
        for grad, resumed_grad in zip(run.grads, resumed_grads, strict=True):
            resumed_grad[...] = grad
        resumed.step()
    for param, resumed_param in zip(run.params, resumed_params, strict=True):
        np.testing.assert_array_equal(param, resumed_param)
    # the saved state is a copy: stepping afterwards did not change it
    assert all(np.array_equal(state[key], loaded[key]) for key in state)


def test_load_state_dict_rejects_state_from_another_model():
    params = [(np.zeros(3), np.zeros(3))]
    optimizer = optim.SGD(params, lr=0.1, momentum=0.9)
    optimizer.step()
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match=r"'state.0.momentum_buffer' has shape \(3,\).*\(4,\)"):
        optim.SGD([(np.zeros(4), np.zeros(4))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"missing keys \['hyper.betas'"):
        optim.Adam([(np.zeros(3), np.zeros(3))]).load_state_dict(state)
    with pytest.raises(ValueError, match="unexpected key 'bogus'"):
        optim.SGD(params, lr=0.1).load_state_dict({**state, "bogus": np.zeros(1)})
    bigger = {**state, "state.5.momentum_buffer": np.zeros(3)}
    with pytest.raises(ValueError, match=r"state for parameter 5.*has 1 parameters"):
        optim.SGD(params, lr=0.1).load_state_dict(bigger)


class Scale(Module):
    """y = x * weight, a module to train in the tests."""

    def __init__(self):
        super().__init__()
        self.add_param("weight", np.ones(3, dtype=np.float32))


def test_updates_the_model_in_place_and_zero_grad_clears():
    model = Scale()
    weight, grad = model.params["weight"], model.grads["weight"]
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    grad[...] = 1.0
    optimizer.step()
    assert model.params["weight"] is weight and weight.dtype == np.float32
    np.testing.assert_array_equal(weight, 0.5)
    optimizer.zero_grad()
    assert model.grads["weight"] is grad
    np.testing.assert_array_equal(grad, 0.0)


def test_lr_is_a_python_float_so_float32_stays_float32():
    model = Scale()
    optimizer = optim.Adam(model.parameters())
    optimizer.lr = np.float64(0.01)
    assert type(optimizer.lr) is float
    model.grads["weight"][...] = 1.0
    optimizer.step()
    assert model.params["weight"].dtype == np.float32


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), "SGD: lr must be >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "momentum must be >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be >= 0"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"Adam: betas must be two numbers in \[0, 1\)"),
        (lambda p: optim.AdamW(p, betas=(-0.1, 0.9)), r"AdamW: betas must be"),
        (lambda p: optim.Adam(p, eps=-1), "eps must be >= 0"),
        (lambda p: optim.RMSprop(p, alpha=-0.5), "RMSprop: alpha must be >= 0"),
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.SGD(Scale(), lr=0.1), r"pass model.parameters\(\)"),
        (lambda p: optim.SGD([np.zeros(3)], lr=0.1), r"not a \(param, grad\) pair"),
        (lambda p: optim.SGD([(np.zeros(3), np.zeros(4))], lr=0.1), r"grad has shape \(4,\)"),
        (
            lambda p: optim.SGD([(np.zeros(3), np.zeros(3, dtype=np.float32))], lr=0.1),
            "same dtype; got param float64, grad float32",
        ),
    ],
)
def test_bad_hyperparameters_and_params_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build(Scale().parameters())


def test_defaults_match_torch():
    for name, (ours_class, torch_class, _) in OPTIMIZERS.items():
        ours = inspect.signature(ours_class).parameters
        theirs = inspect.signature(torch_class).parameters
        skipped = {"params", "lr"} if name == "SGD" else {"params"}  # torch's SGD lr has a default
        for key in (set(ours) & set(theirs)) - skipped:
            assert ours[key].default == theirs[key].default, (name, key)


@pytest.mark.parametrize(("name", "kwargs"), CORNER_CASES)
def test_float32_updates_never_compute_in_float64(name, kwargs):
    rng = np.random.default_rng(0)
    param = rng.standard_normal((3, 4)).astype(np.float32).view(DtypeRecorder)
    grad = rng.standard_normal((3, 4)).astype(np.float32).view(DtypeRecorder)
    DtypeRecorder.seen = set()
    optimizer = OPTIMIZERS[name][0]([(param, grad)], **kwargs)
    optimizer.lr = np.float64(0.01)  # as a schedule computed with NumPy might set it
    for _ in range(3):
        optimizer.step()
    assert DtypeRecorder.seen == {np.dtype(np.float32), "float"}
