"""Backward before forward: every module says so by name, as the losses do.

The module classes are discovered from the package, so a new layer is covered as soon
as it has an example below (the first test fails until it does).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import dlcc.numpy_nn
from dlcc.course.fences import has_fences, strip_solutions
from dlcc.errors import DlccError
from dlcc.numpy_nn import Conv2d, Linear, ReLU, Sequential
from dlcc.numpy_nn.module import BackwardBeforeForwardError, Module

IMAGES = (2, 3, 6, 6)  # (N, C, H, W)

# class name -> (a small instance of the class given, the shape of an input it takes)
EXAMPLES = {
    "Linear": (lambda cls: cls(4, 3), (2, 4)),
    "ReLU": (lambda cls: cls(), (2, 4)),
    "LeakyReLU": (lambda cls: cls(), (2, 4)),
    "Sigmoid": (lambda cls: cls(), (2, 4)),
    "Tanh": (lambda cls: cls(), (2, 4)),
    "Dropout": (lambda cls: cls(0.5), (2, 4)),
    "Flatten": (lambda cls: cls(), IMAGES),
    "Sequential": (lambda cls: cls(Linear(4, 3), ReLU(), Linear(3, 2)), (2, 4)),
    "Conv2d": (lambda cls: cls(3, 2, 3, padding=1), IMAGES),
    "MaxPool2d": (lambda cls: cls(2), IMAGES),
    "AvgPool2d": (lambda cls: cls(2), IMAGES),
    "BatchNorm1d": (lambda cls: cls(4), (2, 4)),
    "BatchNorm2d": (lambda cls: cls(3), IMAGES),
    "Embedding": (lambda cls: cls(5, 3), (2, 4)),  # takes integer indices
    "RNN": (lambda cls: cls(4, 3), (5, 2, 4)),  # (T, N, input_size); returns (output, h)
    "LSTM": (lambda cls: cls(4, 3), (5, 2, 4)),
    "GRU": (lambda cls: cls(4, 3), (5, 2, 4)),
    "CharLSTM": (lambda cls: cls(5, 3, 4), (2, 4)),  # (N, T) token ids -> (logits, state)
}
TAKES_INDICES = {"Embedding", "CharLSTM"}  # integer token indices in: they have no gradient


def module_classes() -> dict[str, type]:
    """Every public Module subclass defined in a dlcc.numpy_nn submodule."""
    found = {}
    for info in pkgutil.iter_modules(dlcc.numpy_nn.__path__):
        submodule = importlib.import_module(f"dlcc.numpy_nn.{info.name}")
        for name, value in vars(submodule).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Module)
                and value is not Module
                and not name.startswith("_")
                and value.__module__ == submodule.__name__
            ):
                found[name] = value
    return found


def test_every_module_class_has_an_example():
    classes = module_classes()
    missing = sorted(set(classes) - set(EXAMPLES))
    assert not missing, f"add an example to EXAMPLES for {missing}"
    assert sorted(EXAMPLES) == sorted(classes), "EXAMPLES names a class the package lacks"


def build(name: str, classes: dict | None = None):
    make, input_shape = EXAMPLES[name]
    module = make((classes or module_classes())[name])
    assert type(module).__name__ == name
    return module, input_shape


def output_gradient(module, input_shape):
    rng = np.random.default_rng(0)
    if type(module).__name__ in TAKES_INDICES:
        x = rng.integers(0, 5, size=input_shape)
    else:
        x = rng.standard_normal(input_shape).astype(np.float32)
    out = module.forward(x)
    if isinstance(out, tuple):  # a recurrent layer's (output, final_state)
        out = out[0]
    return x, rng.standard_normal(out.shape).astype(out.dtype)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_backward_before_forward_names_the_module(name, mode):
    module, input_shape = build(name)
    module.train(mode == "train")
    # The gradient a forward would expect, computed on a twin so `module` stays fresh.
    _, grad_out = output_gradient(build(name)[0].train(mode == "train"), input_shape)
    with pytest.raises(
        BackwardBeforeForwardError, match=rf"^{name}\.backward called before forward"
    ):
        module.backward(grad_out)
    try:
        module.backward(grad_out)
    except BackwardBeforeForwardError as error:
        assert "call forward(x) first" in str(error)
        assert isinstance(error, DlccError) and isinstance(error, RuntimeError)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_backward_after_eval_mode_forward_works(name):
    module, input_shape = build(name)
    module.eval()
    x, grad_out = output_gradient(module, input_shape)
    grad_in = module.backward(grad_out)
    if name in TAKES_INDICES:
        assert grad_in is None
        return
    assert grad_in.shape == x.shape
    assert np.isfinite(grad_in).all()


def test_sequential_says_which_layer_has_no_forward_state():
    model = Sequential(Linear(4, 3), ReLU())
    with pytest.raises(BackwardBeforeForwardError, match=r"layer 1 says: ReLU\.backward called"):
        model.backward(np.ones((2, 3), dtype=np.float32))


def test_starter_style_backward_reads_only_what_forward_keeps():
    """The a1 tests set what forward keeps by hand and call backward alone: still allowed."""
    conv = Conv2d(3, 2, 3, padding=1)
    conv.input = np.zeros(IMAGES, dtype=np.float32)
    assert conv.backward(np.ones((2, 2, 6, 6), dtype=np.float32)).shape == IMAGES


def starter_classes() -> dict[str, type]:
    """The module classes as a learner's starter code has them: solution regions stubbed."""
    found = {}
    for name, cls in module_classes().items():
        path = inspect.getsourcefile(cls)
        with open(path, encoding="utf-8") as file:
            text = file.read()
        if not has_fences(text):
            continue
        starter = {"__name__": f"starter_{cls.__module__}"}
        exec(compile(strip_solutions(text, path, "a1"), path, "exec"), starter)
        found[name] = starter[name]
    return found


def test_the_starter_code_gives_the_same_error():
    """The check runs before each solution region, so an unwritten backward still says it."""
    classes = starter_classes()
    assert {"Linear", "ReLU", "Sigmoid", "Conv2d", "MaxPool2d"} <= set(classes)
    for name in classes:
        module, input_shape = build(name, classes)
        grad_out = np.ones(input_shape, dtype=np.float32)  # never read: the check comes first
        with pytest.raises(BackwardBeforeForwardError, match=rf"^{name}\.backward called before"):
            module.backward(grad_out)
