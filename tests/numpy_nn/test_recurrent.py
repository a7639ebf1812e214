"""RNN, LSTM, GRU and Embedding against torch.nn, and against finite differences.

Random configurations (seeded) in the numpy-ml style: the same layer in both libraries
with the same weights; forward output, final state, every parameter gradient, the input
gradient and the initial state's gradient must agree in float64 to ~1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlcc.numpy_nn as nn
from dlcc.numpy_nn.gradcheck import gradcheck, numerical_gradient, relative_error

torch = pytest.importorskip("torch")

F64 = np.float64
TOL = dict(rtol=1e-10, atol=1e-10)
TOL32 = dict(rtol=2e-4, atol=2e-5)
CLASSES = {
    "RNN": (nn.RNN, torch.nn.RNN),
    "LSTM": (nn.LSTM, torch.nn.LSTM),
    "GRU": (nn.GRU, torch.nn.GRU),
}


# ---- helpers ------------------------------------------------------------------------------
def as_parts(state):
    """A state (or its gradient) as a tuple: (h,) or (h, c)."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def to_torch_state(parts, is_lstm):
    tensors = tuple(torch.tensor(part, requires_grad=True) for part in parts)
    return tensors if is_lstm else tensors[0]


def make_pair(name, config, dtype=F64):
    ours_cls, torch_cls = CLASSES[name]
    kwargs = dict(
        num_layers=config["layers"], bias=config["bias"], batch_first=config["batch_first"]
    )
    if name == "RNN":
        kwargs["nonlinearity"] = config["nonlinearity"]
    torch.manual_seed(config["seed"])
    theirs = torch_cls(config["input"], config["hidden"], **kwargs).to(
        torch.float64 if dtype == F64 else torch.float32
    )
    ours = ours_cls(config["input"], config["hidden"], **kwargs, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def random_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    for index in range(count):
        configs.append(
            dict(
                seed=int(rng.integers(1 << 30)),
                layers=int(rng.integers(1, 3)),
                input=int(rng.integers(1, 5)),
                hidden=int(rng.integers(1, 5)),
                # batch 1 and sequence length 1 come up on their own, and for sure here:
                batch=1 if index % 5 == 0 else int(rng.integers(1, 4)),
                steps=1 if index % 7 == 0 else int(rng.integers(1, 6)),
                batch_first=bool(rng.random() < 0.5),
                bias=bool(rng.random() < 0.8),
                given_state=bool(rng.random() < 0.7),
                grad_state=str(rng.choice(["none", "all", "h_only"])),
                nonlinearity=str(rng.choice(["tanh", "relu"], p=[0.7, 0.3])),
            )
        )
    return configs


def run_both(name, config, dtype=F64):
    """Forward and backward in both libraries; returns what to compare."""
    is_lstm = name == "LSTM"
    ours, theirs = make_pair(name, config, dtype)
    rng = np.random.default_rng(config["seed"])
    batch, steps = config["batch"], config["steps"]
    shape = (batch, steps) if config["batch_first"] else (steps, batch)
    x = rng.standard_normal((*shape, config["input"])).astype(dtype)
    state_shape = (config["layers"], batch, config["hidden"])
    parts = tuple(rng.standard_normal(state_shape).astype(dtype) for _ in range(1 + is_lstm))
    if not config["given_state"]:  # ours gets None; torch gets zeros, to read their grad
        parts = tuple(np.zeros_like(part) for part in parts)
    state = (parts if is_lstm else parts[0]) if config["given_state"] else None

    x_torch = torch.tensor(x, requires_grad=True)
    state_torch = to_torch_state(parts, is_lstm)
    out_torch, final_torch = theirs(x_torch, state_torch)
    output, final = ours.forward(x, state)

    grad_output = rng.standard_normal(output.shape).astype(dtype)
    objective = (out_torch * torch.tensor(grad_output)).sum()
    grad_state = None
    if config["grad_state"] != "none":
        grads = [rng.standard_normal(state_shape).astype(dtype) for _ in range(1 + is_lstm)]
        if config["grad_state"] == "h_only" and is_lstm:
            grads[1] = None
        for tensor, grad in zip(as_parts(final_torch), grads, strict=True):
            if grad is not None:
                objective = objective + (tensor * torch.tensor(grad)).sum()
        grad_state = tuple(grads) if is_lstm else grads[0]
    objective.backward()
    ours.zero_grad()
    grad_x = ours.backward(grad_output, grad_state)
    return dict(
        ours=ours,
        theirs=theirs,
        output=(output, out_torch),
        final=(as_parts(final), as_parts(final_torch)),
        grad_x=(grad_x, x_torch.grad),
        grad_initial=(as_parts(ours.grad_initial_state), as_parts(state_torch)),
    )


def assert_matches_torch(result, tol):
    output, out_torch = result["output"]
    assert output.shape == tuple(out_torch.shape)
    np.testing.assert_allclose(output, out_torch.detach().numpy(), **tol, err_msg="output")
    for ours, theirs in zip(*result["final"], strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **tol, err_msg="final state")
    grad_x, grad_x_torch = result["grad_x"]
    np.testing.assert_allclose(grad_x, grad_x_torch.numpy(), **tol, err_msg="grad of input")
    for ours, theirs in zip(*result["grad_initial"], strict=True):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), **tol, err_msg="grad of state")
    for key, param in result["theirs"].named_parameters():
        np.testing.assert_allclose(
            result["ours"].grads[key], param.grad.numpy(), **tol, err_msg=f"grad of {key}"
        )


# ---- against torch --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("config", random_configs(32, seed=10), ids=lambda c: str(c["seed"]))
def test_recurrent_matches_torch(name, config):
    result = run_both(name, config)
    assert_matches_torch(result, TOL)
    assert result["output"][0].dtype == F64


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_float32_stays_float32_and_matches_torch(name):
    config = random_configs(1, seed=3)[0] | dict(layers=2, batch=3, steps=4, given_state=True)
    result = run_both(name, config, dtype=np.float32)
    assert_matches_torch(result, TOL32)
    ours = result["ours"]
    assert result["output"][0].dtype == np.float32
    assert result["grad_x"][0].dtype == np.float32
    assert all(grad.dtype == np.float32 for _, _, grad in ours.named_parameters())
    assert all(part.dtype == np.float32 for part in as_parts(ours.grad_initial_state))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_parameters_are_named_shaped_and_initialised_as_torch(name):
    ours_cls, torch_cls = CLASSES[name]
    ours, theirs = ours_cls(3, 5, num_layers=2), torch_cls(3, 5, num_layers=2)
    ours_state, torch_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(torch_state)  # same keys in the same order
    for key, value in torch_state.items():
        assert ours_state[key].shape == tuple(value.shape), key
        assert ours_state[key].dtype == np.float32
        bound = 1 / np.sqrt(5)
        assert np.abs(ours_state[key]).max() <= bound  # U(-1/sqrt(H), 1/sqrt(H))
        assert np.abs(ours_state[key]).max() > bound / 2  # ... not a narrower one
    assert not ours_cls(3, 5, bias=False).state_dict().keys() & {"bias_ih_l0", "bias_hh_l0"}
    nn.manual_seed(7)
    first = ours_cls(3, 5).state_dict()
    nn.manual_seed(7)
    again = ours_cls(3, 5).state_dict()
    assert all(np.array_equal(first[key], again[key]) for key in first)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_state_dict_round_trips_with_torch_both_ways(name):
    ours_cls, torch_cls = CLASSES[name]
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    # torch -> ours, as numpy arrays
    torch.manual_seed(1)
    theirs = torch_cls(3, 4, num_layers=2).double()
    ours = ours_cls(3, 4, num_layers=2, dtype=F64)
    ours.load_state_dict({key: value.numpy() for key, value in theirs.state_dict().items()})
    output, _ = ours.forward(x)
    np.testing.assert_allclose(output, theirs(torch.tensor(x))[0].detach().numpy(), **TOL)
    # ours -> torch
    ours = ours_cls(3, 4, num_layers=2, dtype=F64)  # fresh weights from our generator
    theirs = torch_cls(3, 4, num_layers=2).double()
    theirs.load_state_dict({key: torch.tensor(value) for key, value in ours.state_dict().items()})
    output, final = ours.forward(x)
    out_torch, final_torch = theirs(torch.tensor(x))
    np.testing.assert_allclose(output, out_torch.detach().numpy(), **TOL)
    for part, part_torch in zip(as_parts(final), as_parts(final_torch), strict=True):
        np.testing.assert_allclose(part, part_torch.detach().numpy(), **TOL)


def test_gru_uses_torchs_reset_gate_on_the_hidden_bias():
    """n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): r scales b_hn too (torch, cuDNN)."""
    config = dict(random_configs(1, seed=4)[0], layers=1, bias=True, given_state=True)
    ours, theirs = make_pair("GRU", config)
    with torch.no_grad():
        theirs.bias_hh_l0[2 * config["hidden"] :] += 3.0  # make b_hn matter
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, config["input"]))
    h0 = np.random.default_rng(1).standard_normal((1, 2, config["hidden"]))
    output, _ = ours.forward(x, h0)
    expected = theirs(torch.tensor(x), torch.tensor(h0))[0].detach().numpy()
    np.testing.assert_allclose(output, expected, **TOL)


def test_skipping_the_input_gradient_keeps_the_parameter_gradients():
    """needs_input_grad = False (a first layer fed data): backward returns None, and the
    parameter gradients are those of a full backward."""
    rng = np.random.default_rng(5)
    x, h0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 2, 5))
    grad_output = rng.standard_normal((4, 2, 5))
    full, first_layer = nn.GRU(3, 5, num_layers=2, dtype=F64), nn.GRU(3, 5, num_layers=2, dtype=F64)
    first_layer.load_state_dict(full.state_dict())
    first_layer.needs_input_grad = False
    for rnn in (full, first_layer):
        rnn.forward(x, h0)
    assert full.backward(grad_output).shape == x.shape
    assert first_layer.backward(grad_output) is None
    for key, grad in full.grads.items():
        np.testing.assert_allclose(first_layer.grads[key], grad, **TOL, err_msg=key)
    np.testing.assert_allclose(first_layer.grad_initial_state, full.grad_initial_state, **TOL)


# ---- finite differences -------------------------------------------------------------------
class OutputAndFinalState(nn.Module):
    """Wraps a recurrent layer as a one-array Module for gradcheck: its output is the
    layer's output and final state, flattened and joined; the initial state is fixed."""

    def __init__(self, rnn, state):
        super().__init__()
        self.rnn, self.state = rnn, state

    def children(self):
        yield "rnn", self.rnn

    def forward(self, x):
        output, final = self.rnn.forward(x, self.state)
        self.shapes = [output.shape] + [part.shape for part in as_parts(final)]
        return np.concatenate([output.ravel()] + [part.ravel() for part in as_parts(final)])

    def backward(self, grad):
        pieces, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            pieces.append(grad[start : start + size].reshape(shape))
            start += size
        grad_state = tuple(pieces[1:]) if len(pieces) == 3 else pieces[1]
        return self.rnn.backward(pieces[0], grad_state)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_gradcheck(name, batch_first):
    ours_cls = CLASSES[name][0]
    nn.manual_seed(3)
    rnn = ours_cls(2, 3, num_layers=2, batch_first=batch_first, dtype=F64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 2) if batch_first else (4, 2, 2))
    parts = tuple(rng.standard_normal((2, 2, 3)) for _ in range(1 + (name == "LSTM")))
    module = OutputAndFinalState(rnn, parts if name == "LSTM" else parts[0])
    result = gradcheck(module, x, rtol=1e-6, atol=1e-8)
    assert result.ok, str(result)
    # and the initial state's gradient, against finite differences of the same objective
    upstream = rng.standard_normal(module.forward(x).shape)
    module.zero_grad()
    module.backward(upstream)
    for part, grad in zip(parts, as_parts(rnn.grad_initial_state), strict=True):
        numerical = numerical_gradient(lambda: float(module.forward(x) @ upstream), part)
        assert relative_error(grad, numerical, 1e-2).max() < 1e-6


# ---- truncated BPTT -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_truncated_bptt_with_carried_state(name):
    """Two chunks with the state carried over give the forward of the whole sequence; the
    gradient of the second chunk stops at the boundary, as torch's with state.detach()."""
    ours, theirs = make_pair(name, dict(random_configs(1, seed=6)[0], layers=2, bias=True))
    ours.batch_first = theirs.batch_first = True
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7, ours.input_size))
    whole, whole_final = ours.forward(x)
    first, state = ours.forward(x[:, :4])
    second, final = ours.forward(x[:, 4:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, **TOL)
    for part, whole_part in zip(as_parts(final), as_parts(whole_final), strict=True):
        np.testing.assert_allclose(part, whole_part, **TOL)

    grad_output = rng.standard_normal(second.shape)
    ours.zero_grad()
    ours.backward(grad_output)
    _, state_torch = theirs(torch.tensor(x[:, :4]))
    carried = tuple(part.detach().requires_grad_() for part in as_parts(state_torch))
    out_torch, _ = theirs(torch.tensor(x[:, 4:]), carried if name == "LSTM" else carried[0])
    (out_torch * torch.tensor(grad_output)).sum().backward()
    for key, param in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[key], param.grad.numpy(), **TOL, err_msg=key)
    for grad, part in zip(as_parts(ours.grad_initial_state), carried, strict=True):
        np.testing.assert_allclose(grad, part.grad.numpy(), **TOL)


# ---- Embedding ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
def test_embedding_matches_torch_with_repeated_indices(shape):
    rng = np.random.default_rng(len(shape))
    theirs = torch.nn.Embedding(4, 3).double()
    ours = nn.Embedding(4, 3, dtype=F64)
    ours.load_state_dict(theirs.state_dict())
    indices = rng.integers(0, 4, size=shape)  # 4 rows: many repeats
    output = ours.forward(indices)
    out_torch = theirs(torch.tensor(indices))
    assert output.shape == (*shape, 3)
    np.testing.assert_allclose(output, out_torch.detach().numpy(), **TOL)
    grad_output = rng.standard_normal(output.shape)
    (out_torch * torch.tensor(grad_output)).sum().backward()
    ours.zero_grad()
    assert ours.backward(grad_output) is None  # indices have no gradient
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), **TOL)
    ours.forward(indices)
    ours.backward(grad_output)  # accumulates, as torch's .grad
    np.testing.assert_allclose(ours.grads["weight"], 2 * theirs.weight.grad.numpy(), **TOL)


def test_embedding_defaults():
    embedding = nn.Embedding(100, 8)
    assert embedding.params["weight"].shape == (100, 8)
    assert embedding.params["weight"].dtype == np.float32
    assert list(embedding.state_dict()) == list(torch.nn.Embedding(100, 8).state_dict())
    assert 0.7 < embedding.params["weight"].std() < 1.3  # N(0, 1), as torch
    assert repr(embedding) == "Embedding(100, 8)"


def test_embedding_lstm_linear_sequence_loss_matches_torch():
    """A character-level language model end to end: loss and every gradient as torch."""
    vocab, dim, hidden, batch, steps = 6, 4, 5, 3, 7
    torch.manual_seed(0)
    torch_parts = [
        torch.nn.Embedding(vocab, dim).double(),
        torch.nn.LSTM(dim, hidden, batch_first=True).double(),
        torch.nn.Linear(hidden, vocab).double(),
    ]
    parts = [
        nn.Embedding(vocab, dim, dtype=F64),
        nn.LSTM(dim, hidden, batch_first=True, dtype=F64),
        nn.Linear(hidden, vocab, dtype=F64),
    ]
    for ours, theirs in zip(parts, torch_parts, strict=True):
        ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab, size=(batch, steps + 1))
    target = tokens[:, 1:].copy()
    target[0, -2:] = -100  # padding
    embedding, lstm, head = parts
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(head.forward(lstm.forward(embedding.forward(tokens[:, :-1]))[0]), target)
    grad_hidden = head.backward(loss_fn.backward())
    embedding.backward(lstm.backward(grad_hidden))

    embedded = torch_parts[0](torch.tensor(tokens[:, :-1]))
    logits = torch_parts[2](torch_parts[1](embedded)[0])
    loss_torch = torch.nn.functional.cross_entropy(logits.transpose(1, 2), torch.tensor(target))
    loss_torch.backward()
    np.testing.assert_allclose(loss, loss_torch.item(), **TOL)
    for ours, theirs in zip(parts, torch_parts, strict=True):
        for key, param in theirs.named_parameters():
            np.testing.assert_allclose(ours.grads[key], param.grad.numpy(), **TOL, err_msg=key)


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_bad_input_is_refused_clearly(name):
    rnn = CLASSES[name][0](3, 4, num_layers=2)
    x = np.zeros((5, 2, 3), dtype=np.float32)
    cases = [
        (x[:, 0], r"expected input \(T, N, input_size=3\), got shape \(5, 3\).*x\[:, None\]"),
        (x[None], r"expected input \(T, N, input_size=3\), got shape \(1, 5, 2, 3\)"),
        (np.zeros((5, 2, 4), np.float32), r"expected input of shape \(T, N, input_size=3\)"),
        (
            np.zeros((5, 2, 3), np.int64),
            r"expected float input.*got an array of dtype int64.*Embedding",
        ),
        (np.zeros((5, 2, 3)), r"expected input dtype float32, got float64.*astype"),
        ([[[0.0] * 3]], r"expected a NumPy array.*got list"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=rf"^{name}\(3, 4, num_layers=2\): {message}"):
            rnn.forward(bad)
    batch_first = CLASSES[name][0](3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"\(N, T, input_size=3\), got shape \(5, 3\).*x\[None\]"):
        batch_first.forward(x[:, 0])

    good = np.zeros((2, 2, 4), np.float32)
    wrong = np.zeros((2, 3, 4), np.float32)  # a state from a batch of 3
    shape = r"state {} of shape \(num_layers, N, hidden_size\) = \(2, 2, 4\), got \(2, 3, 4\)"
    if name == "LSTM":
        with pytest.raises(ValueError, match=r"state as a tuple \(h, c\).*got ndarray"):
            rnn.forward(x, good)
        with pytest.raises(ValueError, match=shape.format("h0")):
            rnn.forward(x, (wrong, good))
        with pytest.raises(ValueError, match=shape.format("c0")):
            rnn.forward(x, (good, wrong))
    else:
        with pytest.raises(ValueError, match=r"state as one array.*got a tuple of 2.*Only an LSTM"):
            rnn.forward(x, (good, good))
        with pytest.raises(ValueError, match=shape.format("h0")):
            rnn.forward(x, wrong)
        with pytest.raises(ValueError, match=r"state h0 of dtype float32, got float64"):
            rnn.forward(x, good.astype(F64))

    output, _ = rnn.forward(x)
    with pytest.raises(ValueError, match=r"backward: expected grad_output of the output's shape"):
        rnn.backward(output[:, :1])
    with pytest.raises(ValueError, match=r"grad_state h_n of shape"):
        rnn.backward(output, (wrong, good) if name == "LSTM" else wrong)


def test_backward_before_forward_and_bad_constructor_arguments():
    with pytest.raises(nn.BackwardBeforeForwardError, match=r"^LSTM\.backward called before"):
        nn.LSTM(2, 3).backward(np.zeros((1, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"GRU: hidden_size must be a positive integer, got 0"):
        nn.GRU(2, 0)
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"dtype must be np.float32 or np.float64"):
        nn.LSTM(2, 3, dtype=np.int64)


def test_embedding_refuses_bad_indices():
    embedding = nn.Embedding(10, 3)
    with pytest.raises(
        ValueError,
        match=r"^Embedding\(10, 3\): indices must be in \[0, num_embeddings\) = "
        r"\[0, 10\), got values from 0 to 10",
    ):
        embedding.forward(np.array([[0, 10], [3, 4]]))
    with pytest.raises(ValueError, match=r"got values from -1 to 4.*padding"):
        embedding.forward(np.array([-1, 4]))
    with pytest.raises(
        ValueError, match=r"expected an integer array of token indices, got dtype float32"
    ):
        embedding.forward(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"got list"):
        embedding.forward([1, 2])


def test_repr_matches_torch():
    for name, (ours_cls, torch_cls) in CLASSES.items():
        kwargs = dict(num_layers=2, bias=False, batch_first=True)
        assert repr(ours_cls(3, 4, **kwargs)) == repr(torch_cls(3, 4, **kwargs)), name
        assert repr(ours_cls(3, 4)) == repr(torch_cls(3, 4)), name
