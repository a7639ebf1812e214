"""Helpers shared by the Assignment 4 graded tests (imported by name: this folder is on
sys.path). Nothing here calls the reference's solution regions: the oracles are torch
(`torch.nn.LSTM`, `scaled_dot_product_attention`, a float64 cross-entropy written in the
tests) and a brute-force peak picker written in the tests.

When graded, the learner's NumPy LSTM is made and run in the learner's process by the helpers
marked `learner_side` (the LSTM's arrays are its own, and a private method cannot be called
through a handle); what the tests check comes back as data. Under plain pytest the same
helpers run in place.
"""

from __future__ import annotations

import numpy as np
import torch

from dlcc.course.checks import check_close, randn  # noqa: F401  (the tests import them from here)
from dlcc.course.remote import connected, learner_side


@learner_side
def use_torch_threads(count: int) -> int:
    """Run PyTorch on `count` threads (in the learner's process when graded); the old count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous


def on_one_thread_there() -> None:
    """When graded, the learner's process runs PyTorch on one thread too."""
    if connected():
        use_torch_threads(1)


def check_numpy(what: str, actual, expected: torch.Tensor, rtol=1e-9, atol=1e-11) -> None:
    """`check_close` for a NumPy result: fail unless `actual` is an ndarray like `expected`."""
    if not isinstance(actual, np.ndarray):
        raise AssertionError(
            f"{what}: a NumPy array of shape {tuple(expected.shape)} expected, got "
            f"{type(actual).__name__}"
        )
    check_close(what, torch.from_numpy(np.asarray(actual, dtype=np.float64)), expected, rtol, atol)


# ---- the LSTM, made from torch's weights -------------------------------------------------------
def torch_lstm(input_size: int, hidden: int, seed: int, dtype=torch.float64, **options):
    """A torch.nn.LSTM with weights from `seed`, and its state_dict as NumPy arrays (data)."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(input_size, hidden, **options).to(dtype)
    state = {name: value.detach().numpy().copy() for name, value in lstm.state_dict().items()}
    return lstm, state


@learner_side
def lstm_forward(state: dict, sizes: tuple, options: dict, x, initial=None, dtype="float64"):
    """The learner's LSTM(*sizes, **options, dtype) with `state` loaded, run forward on x:
    (output, (h_n, c_n)) as data."""
    from dlcc.numpy_nn.recurrent import LSTM

    lstm = LSTM(*sizes, **options, dtype=np.dtype(dtype).type)
    lstm.load_state_dict(state)
    output, final = lstm.forward(x, initial)
    return output, tuple(final)


@learner_side
def lstm_forward_backward(
    state: dict, sizes: tuple, options: dict, x, initial, grad_output, grad_state
):
    """The learner's LSTM forward then backward: (output, final, grad_x, grads,
    grad_initial_state) as data."""
    from dlcc.numpy_nn.recurrent import LSTM

    lstm = LSTM(*sizes, **options, dtype=np.float64)
    lstm.load_state_dict(state)
    output, final = lstm.forward(x, initial)
    lstm.zero_grad()
    grad_x = lstm.backward(grad_output, grad_state)
    grads = {name: np.array(value) for name, value in lstm.grads.items()}
    return output, tuple(final), grad_x, grads, tuple(lstm.grad_initial_state)


@learner_side
def lstm_step_backward(hidden: int, cache: tuple, grad_output, grad_end: tuple, weight_hh):
    """The learner's LSTM._backprop_layer on a cache made by the test:
    (grad_pre (T, N, 4H), (grad_h0, grad_c0)) as data."""
    from dlcc.numpy_nn.recurrent import LSTM

    lstm = LSTM(1, hidden, dtype=np.float64)
    grad_pre, _, _, grad_start = lstm._backprop_layer(
        tuple(cache), grad_output, tuple(grad_end), weight_hh
    )
    return grad_pre, tuple(grad_start)


def lstm_cache(state: dict, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
    """One LSTM layer by hand in torch (the oracle): the cache forward keeps, as NumPy
    (hs, cs (T+1, N, H); acts (T, N, 4H) i, f, g, o after their nonlinearities; tanh_cs
    (T, N, H)), the pre-activations (T tensors (N, 4H) that retain their gradient), the
    output (T, N, H) and the final (h, c)."""
    weight_ih, weight_hh = (torch.from_numpy(state[k]) for k in ("weight_ih_l0", "weight_hh_l0"))
    bias = torch.from_numpy(state["bias_ih_l0"] + state["bias_hh_l0"])
    h, c = h0, c0
    hs, cs, acts, tanh_cs, pres = [h0], [c0], [], [], []
    for t in range(x.shape[0]):
        pre = x[t] @ weight_ih.T + h @ weight_hh.T + bias  # (N, 4H)
        pre.retain_grad()
        i, f, g, o = pre.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        tanh_c = torch.tanh(c)
        h = o * tanh_c
        pres.append(pre)
        acts.append(torch.cat([i, f, g, o], dim=1))
        hs.append(h)
        cs.append(c)
        tanh_cs.append(tanh_c)

    def numpy(tensors):
        return torch.stack(tensors).detach().numpy().copy()

    cache = (numpy(hs), numpy(cs), numpy(acts), numpy(tanh_cs))
    return cache, pres, torch.stack(hs[1:]), (h, c)


# ---- the beat loss on the learner's side -----------------------------------------------------
@learner_side
def heatmap_loss_and_gradient(logits: torch.Tensor, heatmaps: torch.Tensor, pos_weight: float):
    """(the learner's beat_heatmap_loss(logits, heatmaps, pos_weight), d loss / d logits), as
    data: the backward pass runs where the loss was computed."""
    from dlcc.training.tasks.beats import beat_heatmap_loss

    logits = logits.detach().clone().requires_grad_(True)
    loss = beat_heatmap_loss(logits, heatmaps, pos_weight)
    loss.backward()
    return loss.detach(), logits.grad


# ---- peak picking ----------------------------------------------------------------------------
def brute_force_peaks(x: np.ndarray, fs: float, threshold: float, refractory_s: float) -> list:
    """pick_peaks by its definition, sample by sample: plateau-aware local maxima (not the
    first or last sample) >= threshold, then greedy by height (earlier on ties), each at
    least ceil(refractory_s * fs) samples from every kept one."""
    gap = int(np.ceil(refractory_s * fs - 1e-9))
    candidates = []
    i = 1
    while i < len(x) - 1:
        if x[i] > x[i - 1]:
            j = i
            while j + 1 < len(x) and x[j + 1] == x[i]:
                j += 1
            if j + 1 < len(x) and x[j + 1] < x[i] and x[i] >= threshold:
                candidates.append((i + j) // 2)
            i = j + 1
        else:
            i += 1
    kept = []
    for c in sorted(candidates, key=lambda c: (-x[c], c)):
        if all(abs(c - k) >= gap for k in kept):
            kept.append(c)
    return sorted(kept)


def check_peaks(what: str, x, fs: float, threshold: float, refractory_s: float, expected):
    """The learner's pick_peaks(x, fs, threshold, refractory_s) must be `expected`, as an
    (K,) int64 NumPy array."""
    from dlcc.ecg.preprocess import pick_peaks

    got = pick_peaks(x, fs, threshold, refractory_s)
    expected = [int(e) for e in expected]
    where = (
        f"pick_peaks ({what}; fs={fs:g}, threshold={threshold:.3g}, "
        f"refractory_s={refractory_s:.3g})"
    )
    if not isinstance(got, np.ndarray) or got.ndim != 1 or got.dtype != np.int64:
        described = (
            f"an array of dtype {got.dtype}, shape {got.shape}"
            if isinstance(got, np.ndarray)
            else type(got).__name__
        )
        raise AssertionError(f"{where}: a (K,) int64 NumPy array expected, got {described}")
    if got.tolist() != expected:
        trace = "" if len(x) > 40 else f" for the trace {np.round(x, 3).tolist()}"
        raise AssertionError(f"{where}: {expected} expected, got {got.tolist()}{trace}")
