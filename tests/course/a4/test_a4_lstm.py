"""Part 1: the LSTM in NumPy (`LSTM` in `dlcc.numpy_nn.recurrent`): its time step forward
(`LSTM._run_layer`) against torch.nn.LSTM with the same weights, its time step backward
(`LSTM._backprop_layer`) on a cache made here against torch autograd, and both together
against torch autograd and central differences.

The backward tests hand the learner's `_backprop_layer` a cache computed here, by a torch
loop in float64, so that they grade the backward pass alone.
"""

from __future__ import annotations

import numpy as np
import torch
from a4_helpers import (
    check_numpy,
    lstm_cache,
    lstm_forward,
    lstm_forward_backward,
    lstm_step_backward,
    torch_lstm,
)

F64 = torch.float64


def random_input(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def check_forward(
    what,
    input_size,
    hidden,
    seed,
    *,
    batch=2,
    steps=4,
    layers=1,
    batch_first=False,
    given_state=False,
    dtype=F64,
    tol=(1e-9, 1e-11),
):
    options = dict(num_layers=layers, batch_first=batch_first)
    lstm, state = torch_lstm(input_size, hidden, seed, dtype=dtype, **options)
    shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
    numpy_dtype = np.float64 if dtype == F64 else np.float32
    x = random_input(shape, seed + 1).astype(numpy_dtype)
    initial = None
    if given_state:
        initial = tuple(
            random_input((layers, batch, hidden), seed + 2 + k).astype(numpy_dtype)
            for k in range(2)
        )
    with torch.no_grad():
        torch_state = None if initial is None else tuple(torch.from_numpy(a) for a in initial)
        expected, (h_n, c_n) = lstm(torch.from_numpy(x), torch_state)
    output, final = lstm_forward(
        state, (input_size, hidden), options, x, initial, dtype=np.dtype(numpy_dtype).name
    )
    rtol, atol = tol
    check_numpy(f"LSTM forward ({what}): output", output, expected, rtol, atol)
    if len(final) != 2:
        raise AssertionError(f"LSTM forward ({what}): the final state should be (h_n, c_n)")
    check_numpy(f"LSTM forward ({what}): h_n", final[0], h_n, rtol, atol)
    check_numpy(f"LSTM forward ({what}): c_n", final[1], c_n, rtol, atol)
    if output.dtype != numpy_dtype:
        raise AssertionError(
            f"LSTM forward ({what}): output of dtype {np.dtype(numpy_dtype)} expected, got "
            f"{output.dtype}"
        )


def test_lstm_forward_matches_torch():
    check_forward("input 3, hidden 4, T=5, N=2", 3, 4, seed=0, steps=5)
    check_forward("input 1, hidden 1, T=1, N=1", 1, 1, seed=1, batch=1, steps=1)
    check_forward("input 2, hidden 5, T=7, N=3", 2, 5, seed=2, batch=3, steps=7)
    check_forward("float32", 3, 4, seed=3, dtype=torch.float32, tol=(1e-4, 1e-5))


def test_lstm_forward_two_layers_batch_first_and_a_given_state():
    check_forward("given (h0, c0)", 3, 4, seed=10, given_state=True)
    check_forward("two layers", 2, 3, seed=11, layers=2, steps=5)
    check_forward("batch_first", 3, 2, seed=12, batch_first=True, steps=3)
    check_forward(
        "two layers, batch_first, given (h0, c0)",
        2,
        3,
        seed=13,
        layers=2,
        batch_first=True,
        given_state=True,
    )


# ---- the step backward, on a cache made here ---------------------------------------------------
def check_step_backward(what, input_size, hidden, seed, *, batch=2, steps=4, final_grad=False):
    lstm, state = torch_lstm(input_size, hidden, seed)
    x = torch.from_numpy(random_input((steps, batch, input_size), seed + 1))
    h0 = torch.from_numpy(random_input((batch, hidden), seed + 2)).requires_grad_(True)
    c0 = torch.from_numpy(random_input((batch, hidden), seed + 3)).requires_grad_(True)
    cache, pres, output, (h_n, c_n) = lstm_cache(state, x, h0, c0)
    with torch.no_grad():  # the oracle's loop is torch's LSTM
        check_numpy(
            "the test's own LSTM loop", output.detach().numpy(), lstm(x, (h0[None], c0[None]))[0]
        )
    grad_output = random_input((steps, batch, hidden), seed + 4)
    objective = (output * torch.from_numpy(grad_output)).sum()
    grad_end = (np.zeros((batch, hidden)), np.zeros((batch, hidden)))
    if final_grad:
        grad_end = (
            random_input((batch, hidden), seed + 5),
            random_input((batch, hidden), seed + 6),
        )
        objective = objective + (h_n * torch.from_numpy(grad_end[0])).sum()
        objective = objective + (c_n * torch.from_numpy(grad_end[1])).sum()
    objective.backward()
    grad_pre, grad_start = lstm_step_backward(
        hidden, cache, grad_output, grad_end, state["weight_hh_l0"]
    )
    expected = torch.stack([pre.grad for pre in pres])  # (T, N, 4H)
    check_numpy(
        f"LSTM._backprop_layer ({what}): dLoss/d(pre-activations), i f g o", grad_pre, expected
    )
    if len(grad_start) != 2:
        raise AssertionError(
            f"LSTM._backprop_layer ({what}): the initial state's gradient should be "
            "(grad_h, grad_c)"
        )
    check_numpy(f"LSTM._backprop_layer ({what}): dLoss/dh0", grad_start[0], h0.grad)
    check_numpy(f"LSTM._backprop_layer ({what}): dLoss/dc0", grad_start[1], c0.grad)


def test_lstm_step_backward_matches_torch_autograd():
    check_step_backward("input 3, hidden 4, T=5, N=2", 3, 4, seed=20, steps=5)
    check_step_backward("hidden 1, T=1, N=1", 2, 1, seed=21, batch=1, steps=1)
    check_step_backward("hidden 3, T=6, N=3", 2, 3, seed=22, batch=3, steps=6)


def test_lstm_step_backward_with_the_final_states_gradient():
    check_step_backward("a loss on h_n and c_n too", 3, 4, seed=30, final_grad=True)
    check_step_backward("T=1, a loss on h_n and c_n", 2, 2, seed=31, steps=1, final_grad=True)


# ---- forward and backward together ----------------------------------------------------------
def test_lstm_gradcheck():
    """The learner's LSTM forward and backward: every gradient against torch autograd (two
    layers, batch first) and, for one layer, against central differences of the learner's
    own forward pass."""
    input_size, hidden, layers, batch, steps = 2, 3, 2, 2, 3
    options = dict(num_layers=layers, batch_first=True)
    lstm, state = torch_lstm(input_size, hidden, 40, **options)
    x = random_input((batch, steps, input_size), 41)
    initial = tuple(random_input((layers, batch, hidden), 42 + k) for k in range(2))
    grad_output = random_input((batch, steps, hidden), 44)
    grad_state = (random_input((layers, batch, hidden), 45), None)  # a loss on h_n only
    x_torch = torch.from_numpy(x).requires_grad_(True)
    initial_torch = tuple(torch.from_numpy(a).requires_grad_(True) for a in initial)
    out, (h_n, _) = lstm(x_torch, initial_torch)
    objective = (out * torch.from_numpy(grad_output)).sum()
    (objective + (h_n * torch.from_numpy(grad_state[0])).sum()).backward()
    _, _, grad_x, grads, grad_initial = lstm_forward_backward(
        state, (input_size, hidden), options, x, initial, grad_output, grad_state
    )
    what = "LSTM forward + backward (2 layers, batch_first, a loss on output and h_n)"
    check_numpy(f"{what}: dLoss/dx", grad_x, x_torch.grad)
    for name, parameter in lstm.named_parameters():
        check_numpy(f"{what}: dLoss/d{name}", grads.get(name), parameter.grad)
    check_numpy(f"{what}: dLoss/dh0", grad_initial[0], initial_torch[0].grad)
    check_numpy(f"{what}: dLoss/dc0", grad_initial[1], initial_torch[1].grad)

    # central differences of the learner's forward, for a small one-layer LSTM
    _, small = torch_lstm(2, 2, 46)
    x = random_input((3, 1, 2), 47)
    upstream = random_input((3, 1, 2), 48)
    _, _, grad_x, grads, _ = lstm_forward_backward(small, (2, 2), {}, x, None, upstream, None)

    def objective_at(parameters, inputs):
        output, _ = lstm_forward(parameters, (2, 2), {}, inputs)
        return float((output * upstream).sum())

    step = 1e-6
    for name in ["input", *small]:
        array = x if name == "input" else small[name]
        numerical = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            values = []
            for sign in (1, -1):
                changed = array.copy()
                changed[index] += sign * step
                parameters = small if name == "input" else {**small, name: changed}
                values.append(objective_at(parameters, changed if name == "input" else x))
            numerical[index] = (values[0] - values[1]) / (2 * step)
        analytic = grad_x if name == "input" else grads.get(name)
        check_numpy(
            f"LSTM backward (one layer): dLoss/d{name} against central differences",
            analytic,
            torch.from_numpy(numerical),
            rtol=1e-5,
            atol=1e-7,
        )
