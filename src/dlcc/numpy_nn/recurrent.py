"""Recurrent layers, `RNN`, `LSTM` and `GRU`, with backpropagation through time.

The constructor arguments, shapes, parameter names, gate order and initialisation are
torch.nn's, so a ``state_dict`` moves between the two libraries in both directions.

Shapes (L = num_layers, N = batch, T = sequence length, H = hidden_size)::

    x                      (T, N, input_size), or (N, T, input_size) with batch_first=True
    output                 (T, N, H),          or (N, T, H): the last layer's h at every step
    state (RNN, GRU)       h        (L, N, H)  (never batch-first, as in torch)
    state (LSTM)           (h, c),  each (L, N, H)

    output, final_state = rnn.forward(x, state=None)     # state None: zeros
    grad_x = rnn.backward(grad_output, grad_state=None)  # fills rnn.grads
    rnn.grad_initial_state                               # dLoss/d(state given to forward)

**The gradient of the initial state.** Like every `Module`, ``backward`` returns the
gradient of the input ``x``. The gradient of the ``state`` passed to forward is kept in
``grad_initial_state``: an array (L, N, H), or a tuple (grad_h0, grad_c0) for an LSTM,
which is what torch puts in ``h0.grad`` when ``h0`` requires grad. ``grad_state`` passes a
gradient for the final state, in the layout forward returned it (``None`` for none, and for
an LSTM a tuple whose entries may be None): use it when the loss reads ``h_n``, as a
classifier of whole sequences does.

**Truncated BPTT with carried state.** To train on a long sequence in chunks, feed each
chunk the final state of the previous one::

    state = None
    for x_chunk, y_chunk in chunks:                  # consecutive pieces of the sequences
        output, state = rnn.forward(x_chunk, state)  # starts where the last chunk ended
        loss = loss_fn(head(output), y_chunk)
        rnn.backward(head.backward(loss_fn.backward()))  # through this chunk only
        optimizer.step(); rnn.zero_grad()

In torch one writes ``state = state.detach()`` (or detaches both of (h, c)) between the
chunks, or backward would run into the previous chunk's graph. Here the state is a plain
array and ``backward`` only goes through the last ``forward``, so the carried state is
detached already: the forward pass is the same as on the whole sequence, and the gradient
stops at the chunk boundary.

Not supported (torch has them): ``bidirectional``, ``dropout`` between layers, ``proj_size``
and unbatched (T, input_size) input; add a batch axis with ``x[:, None]``.
"""

from __future__ import annotations

import math

import numpy as np

from dlcc.numpy_nn.functional import sum_rows
from dlcc.numpy_nn.module import Module, check_dtype, default_rng


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow, as 0.5 * (1 + tanh(x / 2)): one ufunc pass,
    about six times faster than exp(-logaddexp(0, -x)), and this runs at every time step."""
    out = np.multiply(x, 0.5, dtype=x.dtype)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _by_gate(stacked: np.ndarray, gates: int = 4) -> np.ndarray:
    """View (T, N, G*H) gate blocks as (T, G, N, H), so ``i, f, g, o = view[t]``. No copy.

    (Cheaper than ``np.split`` at every step, which costs microseconds of Python.)
    """
    steps, batch, width = stacked.shape
    return stacked.reshape(steps, batch, gates, width // gates).transpose(0, 2, 1, 3)


class _Recurrent(Module):
    """What RNN, LSTM and GRU share: parameters, checks, the layer loop and the weight
    gradients. A subclass runs one layer through time (``_run_layer``) and back
    (``_backprop_layer``), on time-major arrays.

    Inside, a state is a tuple of (N, H) arrays per layer: (h,) or, for an LSTM, (h, c).
    """

    gates = 1  # how many H-sized blocks the weights stack: RNN 1, LSTM 4 (i, f, g, o), GRU 3
    state_names: tuple[str, ...] = ("h",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dtype=np.float32,
    ):
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be a positive integer, got {value!r}."
                )
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), bool(bias)
        self.batch_first = bool(batch_first)
        self.dtype = check_dtype(dtype)
        # torch.nn.RNNBase.reset_parameters: every weight and bias U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size

        def uniform(*shape):
            return default_rng().uniform(-bound, bound, size=shape).astype(self.dtype)

        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            self.add_param(f"weight_ih_l{layer}", uniform(rows, layer_input))
            self.add_param(f"weight_hh_l{layer}", uniform(rows, hidden_size))
            if bias:
                self.add_param(f"bias_ih_l{layer}", uniform(rows))
                self.add_param(f"bias_hh_l{layer}", uniform(rows))

    # ---- forward --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, state=None):
        """x: (T, N, input_size), or (N, T, input_size) with batch_first=True.
        state: the initial state (see the module docstring); None means zeros.

        Returns (output, final_state): output (T, N, H) or (N, T, H); final_state like state.
        """
        x = self._check_x(x)  # time-major (T, N, input_size)
        batch = x.shape[1]
        initial = self._check_state(state, batch)  # tuple of (L, N, H) arrays
        layer_input = x
        self.caches, finals = [], []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer)
            # The input projection of every time step in one matrix product.
            projected = layer_input @ weight_ih.T  # (T, N, G*H)
            if bias_ih is not None:
                projected += bias_ih
            start = tuple(part[layer] for part in initial)  # ((N, H), ...)
            output, final, cache = self._run_layer(projected, start, weight_hh, bias_hh)
            self.caches.append((layer_input, cache))
            finals.append(final)
            layer_input = output  # (T, N, H)
        final_state = tuple(np.stack(part) for part in zip(*finals, strict=True))
        output = layer_input.transpose(1, 0, 2) if self.batch_first else layer_input
        self.output_shape, self.state_shape = output.shape, final_state[0].shape
        return output, self._public_state(final_state)

    def __call__(self, x: np.ndarray, state=None):
        return self.forward(x, state)

    # ---- backward -------------------------------------------------------------------------
    def backward(self, grad_output: np.ndarray, grad_state=None) -> np.ndarray | None:
        """grad_output: dLoss/dOutput, the shape of output.
        grad_state: dLoss/dFinalState, the layout of final_state, or None (no gradient).

        Returns dLoss/dx (x's shape; None if ``needs_input_grad`` is False), adds every
        parameter's gradient into ``grads`` and sets ``grad_initial_state``.
        """
        caches = self.require_forward("caches")
        grad_output = self._check_grad_output(grad_output)  # time-major (T, N, H)
        grad_final = self._check_grad_state(grad_state)  # tuple of (L, N, H) arrays
        grad_initial = [None] * self.num_layers
        grad_x = None
        for layer in reversed(range(self.num_layers)):
            layer_input, cache = caches[layer]
            weight_ih, weight_hh, bias_ih, _ = self._weights(layer)
            grad_end = tuple(part[layer] for part in grad_final)
            grad_projected, grad_recurrent, h_prev, grad_start = self._backprop_layer(
                cache, grad_output, grad_end, weight_hh
            )
            grad_initial[layer] = grad_start
            # Weight gradients summed over all time steps and samples: one product each.
            gates = self.gates * self.hidden_size
            flat_projected = grad_projected.reshape(-1, gates)  # (T*N, G*H)
            flat_recurrent = grad_recurrent.reshape(-1, gates)  # (T*N, G*H)
            input_rows = layer_input.reshape(-1, layer_input.shape[-1])  # (T*N, input)
            hidden_rows = h_prev.reshape(-1, self.hidden_size)  # (T*N, H)
            self.grads[f"weight_ih_l{layer}"] += flat_projected.T @ input_rows
            self.grads[f"weight_hh_l{layer}"] += flat_recurrent.T @ hidden_rows
            if bias_ih is not None:
                grad_bias_ih = sum_rows(flat_projected)
                # RNN and LSTM: both biases sit in the same sum and get the same gradient.
                if grad_recurrent is grad_projected:
                    grad_bias_hh = grad_bias_ih
                else:
                    grad_bias_hh = sum_rows(flat_recurrent)
                self.grads[f"bias_ih_l{layer}"] += grad_bias_ih
                self.grads[f"bias_hh_l{layer}"] += grad_bias_hh
            if layer > 0 or self.needs_input_grad:
                grad_x = grad_projected @ weight_ih  # (T, N, layer input size)
            else:
                grad_x = None  # the first layer's input is data: nobody needs its gradient
            grad_output = grad_x  # the layer below's output gradient
        self.grad_initial_state = self._public_state(
            tuple(np.stack(part) for part in zip(*grad_initial, strict=True))
        )
        if grad_x is None:
            return None
        return grad_x.transpose(1, 0, 2) if self.batch_first else grad_x

    # ---- what a subclass writes -----------------------------------------------------------
    def _run_layer(self, projected, start, weight_hh, bias_hh):
        """One layer through time.

        projected: (T, N, G*H), x_t @ W_ih.T + b_ih for every t. start: the (N, H) arrays
        of the initial state. Returns (output (T, N, H), final state tuple, cache).
        """
        raise NotImplementedError

    def _backprop_layer(self, cache, grad_output, grad_end, weight_hh):
        """One layer back through time.

        grad_output: (T, N, H), dLoss/dOutput of this layer. grad_end: the final state's
        gradient, a tuple of (N, H). Returns (grad_projected (T, N, G*H), the gradient of
        h_{t-1} @ W_hh.T + b_hh (T, N, G*H), h_prev (T, N, H) the h each step read,
        the initial state's gradient tuple).
        """
        raise NotImplementedError

    # ---- helpers --------------------------------------------------------------------------
    def _weights(self, layer: int):
        params = self.params
        return (
            params[f"weight_ih_l{layer}"],
            params[f"weight_hh_l{layer}"],
            params.get(f"bias_ih_l{layer}"),
            params.get(f"bias_hh_l{layer}"),
        )

    def _layout(self, features: str) -> str:
        return f"(N, T, {features})" if self.batch_first else f"(T, N, {features})"

    def _public_state(self, state: tuple):
        """The internal tuple as the user sees it: h for RNN/GRU, (h, c) for LSTM."""
        return state if len(self.state_names) > 1 else state[0]

    def _check_x(self, x) -> np.ndarray:
        expected = self._layout(f"input_size={self.input_size}")
        if isinstance(x, np.ndarray) and x.dtype.kind in "iub":
            raise ValueError(
                f"{self!r}: expected float input {expected} of dtype {self.dtype}, got an "
                f"array of dtype {x.dtype}. Token indices go through an Embedding first "
                f"(Embedding(vocab_size, {self.input_size})); other data: "
                f"x.astype(np.{self.dtype})."
            )
        if isinstance(x, np.ndarray) and x.ndim != 3:
            hint = " Add a batch axis for a single sequence: x[:, None]." if x.ndim == 2 else ""
            if self.batch_first and x.ndim == 2:
                hint = " Add a batch axis for a single sequence: x[None]."
            raise ValueError(f"{self!r}: expected input {expected}, got shape {x.shape}.{hint}")
        shape_ok = isinstance(x, np.ndarray) and x.shape[-1] == self.input_size
        self.check_input(x, expected, shape_ok)
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _state_error(self, what: str, expected: str, received: str, fix: str) -> ValueError:
        return ValueError(f"{self!r}: expected {what} {expected}, got {received}. {fix}")

    def _check_state(self, state, batch: int) -> tuple:
        """The initial state as a tuple of (L, N, H) arrays (zeros for None)."""
        shape = (self.num_layers, batch, self.hidden_size)
        if state is None:
            return tuple(np.zeros(shape, dtype=self.dtype) for _ in self.state_names)
        parts = self._state_parts(state, "state", "the state forward returned")
        for name, part in zip(self.state_names, parts, strict=True):
            self._check_state_array(part, f"{name}0", shape, "state")
        return parts

    def _state_parts(self, value, what: str, source: str) -> tuple:
        """Split a user-given state (or state gradient) into the internal tuple."""
        layout = "(num_layers, N, hidden_size)"
        if len(self.state_names) == 1:
            if isinstance(value, tuple | list):
                raise self._state_error(
                    what,
                    f"as one array {layout}",
                    f"a {type(value).__name__} of {len(value)}",
                    f"Only an LSTM has a (h, c) pair; pass {source}.",
                )
            return (value,)
        if not isinstance(value, tuple | list) or len(value) != 2:
            received = (
                f"a {type(value).__name__} of {len(value)}"
                if isinstance(value, tuple | list)
                else type(value).__name__
            )
            raise self._state_error(
                what,
                f"as a tuple (h, c), each {layout}",
                received,
                f"An LSTM carries two arrays; pass {source}.",
            )
        return tuple(value)

    def _check_state_array(self, array, name: str, shape: tuple, what: str) -> None:
        if not isinstance(array, np.ndarray):
            raise self._state_error(
                f"{what} {name} as a NumPy array",
                str(shape),
                type(array).__name__,
                "Convert it with np.asarray.",
            )
        if array.shape != shape:
            raise self._state_error(
                f"{what} {name} of shape (num_layers, N, hidden_size) =",
                str(shape),
                str(array.shape),
                "The state is (num_layers, N, hidden_size) even with batch_first=True, as "
                "in torch; is it from a batch of another size?",
            )
        if array.dtype != self.dtype:
            raise self._state_error(
                f"{what} {name} of dtype",
                str(self.dtype),
                str(array.dtype),
                f"Cast it with .astype(np.{self.dtype}).",
            )

    def _check_grad_output(self, grad_output) -> np.ndarray:
        shape = self.output_shape
        if not isinstance(grad_output, np.ndarray) or grad_output.shape != shape:
            received = getattr(grad_output, "shape", type(grad_output).__name__)
            raise ValueError(
                f"{self!r}.backward: expected grad_output of the output's shape {shape}, "
                f"got {received}."
            )
        return grad_output.transpose(1, 0, 2) if self.batch_first else grad_output

    def _check_grad_state(self, grad_state) -> tuple:
        """The final state's gradient as a tuple of (L, N, H) arrays (zeros for None)."""
        shape = self.state_shape
        if grad_state is None:
            return tuple(np.zeros(shape, dtype=self.dtype) for _ in self.state_names)
        parts = self._state_parts(grad_state, "grad_state", "the layout of the final state")
        checked = []
        for name, part in zip(self.state_names, parts, strict=True):
            if part is None:  # e.g. an LSTM whose loss reads h_n but not c_n
                part = np.zeros(shape, dtype=self.dtype)
            self._check_state_array(part, f"{name}_n", shape, "grad_state")
            checked.append(part)
        return tuple(checked)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        return text


class RNN(_Recurrent):
    """Elman RNN, per layer and time step::

        h_t = tanh(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)

    (``nonlinearity="relu"`` uses max(., 0) instead of tanh, as torch.)
    Parameters per layer k: weight_ih_lk (H, input_size for k = 0, else H),
    weight_hh_lk (H, H), bias_ih_lk (H,), bias_hh_lk (H,).
    State: h (num_layers, N, H). See the module docstring for the calling convention.
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dtype=np.float32,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dtype)

    def _run_layer(self, projected, start, weight_hh, bias_hh):
        (h,) = start
        num_steps = projected.shape[0]
        hs = np.empty((num_steps + 1, *h.shape), dtype=self.dtype)  # h_{-1}=h0, h_0, ...
        hs[0] = h
        for t in range(num_steps):
            pre = projected[t] + hs[t] @ weight_hh.T  # (N, H)
            if bias_hh is not None:
                pre += bias_hh
            hs[t + 1] = np.tanh(pre) if self.nonlinearity == "tanh" else np.maximum(pre, 0)
        output = hs[1:]
        return output, (hs[-1],), hs

    def _backprop_layer(self, cache, grad_output, grad_end, weight_hh):
        hs = cache
        (grad_h,) = grad_end
        grad_pre = np.empty((hs.shape[0] - 1, *hs.shape[1:]), dtype=self.dtype)  # (T, N, H)
        for t in reversed(range(len(grad_pre))):
            grad_h = grad_h + grad_output[t]  # from the output and from step t + 1
            h = hs[t + 1]
            if self.nonlinearity == "tanh":
                grad_pre[t] = grad_h * (1 - h * h)
            else:
                grad_pre[t] = grad_h * (h > 0)
            grad_h = grad_pre[t] @ weight_hh  # dLoss/dh_{t-1}
        # The pre-activation is a sum, so its gradient is also that of each term.
        return grad_pre, grad_pre, hs[:-1], (grad_h,)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_Recurrent):
    """Long short-term memory, per layer and time step (torch's gate order i, f, g, o)::

        i, f, g, o = split(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh, 4)
        i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Parameters per layer k: weight_ih_lk (4H, input_size for k = 0, else H),
    weight_hh_lk (4H, H), bias_ih_lk (4H,), bias_hh_lk (4H,).
    State: a tuple (h, c), each (num_layers, N, H). See the module docstring.
    """

    gates = 4
    state_names = ("h", "c")

    def _gate_constants(self, dtype):
        """(rate, height, shift), each (4H,), with ``act = height / (1 + exp(rate * pre)) + shift``.

        sigmoid(x) = 1 / (1 + exp(-x)) for i, f, o (rate -1, height 1, shift 0) and
        tanh(x) = 2 / (1 + exp(-2x)) - 1 for g (rate -2, height 2, shift -1): whole-row
        operations per step instead of two sigmoids and a tanh on slices, and NumPy's exp is
        about twice as fast as its tanh. exp may overflow to inf: the gate is then exactly 0
        (or -1), its limit.
        """
        hidden = self.hidden_size
        g = slice(2 * hidden, 3 * hidden)
        rate, height, shift = (np.full(4 * hidden, v, dtype=dtype) for v in (-1.0, 1.0, 0.0))
        rate[g], height[g], shift[g] = -2.0, 2.0, -1.0
        return rate, height, shift

    def _run_layer(self, projected, start, weight_hh, bias_hh):
        h, c = start
        num_steps = projected.shape[0]
        if bias_hh is not None:
            projected += bias_hh  # both biases, added once for all steps (projected is ours)
        hs = np.empty((num_steps + 1, *h.shape), dtype=self.dtype)  # h_{-1}=h0, h_0, ...
        cs = np.empty_like(hs)
        hs[0], cs[0] = h, c
        acts = np.empty(projected.shape, dtype=self.dtype)  # (T, N, 4H): i, f, g, o
        tanh_cs = np.empty((num_steps, *h.shape), dtype=self.dtype)
        by_gate = _by_gate(acts)  # (T, 4, N, H) view: i, f, g, o = by_gate[t]
        # BEGIN SOLUTION lstm_step_forward: the gates, c_t and h_t at every time step
        rate, height, shift = self._gate_constants(projected.dtype)
        for t in range(num_steps):
            act = acts[t]  # (N, 4H), filled in place: pre-activation, then activation
            # (np.matmul with out= is slower here than a fresh result: it skips BLAS.)
            np.add(hs[t] @ weight_hh.T, projected[t], out=act)
            act *= rate
            with np.errstate(over="ignore"):
                np.exp(act, out=act)
            act += 1
            np.divide(height, act, out=act)
            act += shift
            i, f, g, o = by_gate[t]
            np.multiply(f, cs[t], out=cs[t + 1])
            cs[t + 1] += i * g
            np.tanh(cs[t + 1], out=tanh_cs[t])
            np.multiply(o, tanh_cs[t], out=hs[t + 1])
        # END SOLUTION
        # BEGIN PROMPT
        # For t = 0 .. T-1, fill the arrays made above (gate order i, f, g, o, each H wide):
        #   pre = projected[t] + hs[t] @ weight_hh.T    (N, 4H); both biases are in projected
        #   acts[t] = the activations of pre: sigmoid (_sigmoid) on the i, f and o blocks,
        #             np.tanh on the g block; then i, f, g, o = by_gate[t], each (N, H)
        #   cs[t + 1] = f * cs[t] + i * g               (N, H): c_t (cs[0] is c_{-1} = c0)
        #   tanh_cs[t] = np.tanh(cs[t + 1])             (N, H)
        #   hs[t + 1] = o * tanh_cs[t]                  (N, H): h_t (hs[0] is h_{-1} = h0)
        # Backward reads acts, cs, hs and tanh_cs: fill every one of them.
        # END PROMPT
        output = hs[1:]
        return output, (hs[-1], cs[-1]), (hs, cs, acts, tanh_cs)

    def _backprop_layer(self, cache, grad_output, grad_end, weight_hh):
        hs, cs, acts, tanh_cs = cache
        hidden = self.hidden_size
        grad_h, grad_c = grad_end
        grad_pre = np.empty_like(acts)  # (T, N, 4H)
        acts_by_gate, grad_by_gate = _by_gate(acts), _by_gate(grad_pre)
        # BEGIN SOLUTION lstm_step_backward: back through the gates, c_t and h_t, last step first
        # Every step's gate derivatives at once, before the loop: sigmoid' = s * (1 - s)
        # for i, f, o and tanh' = 1 - g**2 for g. Likewise tanh'(c_t) = 1 - tanh(c_t)**2.
        gate_slopes = acts * (1 - acts)  # (T, N, 4H)
        g_all = acts[:, :, 2 * hidden : 3 * hidden]
        gate_slopes[:, :, 2 * hidden : 3 * hidden] = 1 - g_all * g_all
        tanh_c_slopes = 1 - tanh_cs * tanh_cs  # (T, N, H)
        for t in reversed(range(len(acts))):
            i, f, g, o = acts_by_gate[t]
            grad_i, grad_f, grad_g, grad_o = grad_by_gate[t]  # views into grad_pre[t]
            grad_h = grad_h + grad_output[t]
            np.multiply(grad_h, tanh_cs[t], out=grad_o)
            grad_c = grad_c + grad_h * o * tanh_c_slopes[t]
            np.multiply(grad_c, g, out=grad_i)
            np.multiply(grad_c, cs[t], out=grad_f)
            np.multiply(grad_c, i, out=grad_g)
            grad_pre[t] *= gate_slopes[t]  # through the nonlinearities
            grad_h = grad_pre[t] @ weight_hh  # dLoss/dh_{t-1}
            grad_c = grad_c * f  # dLoss/dc_{t-1}
        # END SOLUTION
        # BEGIN PROMPT
        # The cache is forward's: hs, cs (T+1, N, H), acts (T, N, 4H: i, f, g, o after their
        # nonlinearities), tanh_cs (T, N, H). grad_output[t] (N, H) is dLoss/dh_t from above;
        # grad_h, grad_c (N, H) start as the final state's gradient. For t = T-1 down to 0:
        #   grad_h = grad_h + grad_output[t]           dLoss/dh_t, both paths
        #   dLoss/do = grad_h * tanh_cs[t];  grad_c = grad_c + grad_h * o * (1 - tanh_cs[t]**2)
        #   dLoss/di = grad_c * g;  dLoss/df = grad_c * cs[t];  dLoss/dg = grad_c * i
        #   grad_pre[t] (N, 4H) = those four, i, f, g, o (grad_by_gate[t] views it), each
        #             times its nonlinearity's slope: s * (1 - s) for i, f, o; 1 - g**2 for g
        #   grad_h = grad_pre[t] @ weight_hh            dLoss/dh_{t-1}
        #   grad_c = grad_c * f                         dLoss/dc_{t-1}
        # After the loop grad_h, grad_c are the initial state's gradients (returned below).
        # END PROMPT
        return grad_pre, grad_pre, hs[:-1], (grad_h, grad_c)


class GRU(_Recurrent):
    """Gated recurrent unit, per layer and time step (torch's gate order r, z, n)::

        r = sigmoid(x_t @ W_ir.T + b_ir + h_{t-1} @ W_hr.T + b_hr)
        z = sigmoid(x_t @ W_iz.T + b_iz + h_{t-1} @ W_hz.T + b_hz)
        n = tanh(x_t @ W_in.T + b_in + r * (h_{t-1} @ W_hn.T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    W_ih stacks (W_ir, W_iz, W_in) and W_hh stacks (W_hr, W_hz, W_hn). Note that r
    multiplies ``h @ W_hn.T + b_hn``, bias included, as torch (and cuDNN) compute it.
    Parameters per layer k: weight_ih_lk (3H, input_size for k = 0, else H),
    weight_hh_lk (3H, H), bias_ih_lk (3H,), bias_hh_lk (3H,).
    State: h (num_layers, N, H). See the module docstring.
    """

    gates = 3

    def _run_layer(self, projected, start, weight_hh, bias_hh):
        (h,) = start
        num_steps, hidden = projected.shape[0], self.hidden_size
        hs = np.empty((num_steps + 1, *h.shape), dtype=self.dtype)
        hs[0] = h
        acts = np.empty(projected.shape, dtype=self.dtype)  # (T, N, 3H): r, z, n
        recurrent_n = np.empty((num_steps, *h.shape), dtype=self.dtype)  # h @ W_hn.T + b_hn
        for t in range(num_steps):
            recurrent = hs[t] @ weight_hh.T  # (N, 3H)
            if bias_hh is not None:
                recurrent += bias_hh
            act = acts[t]
            act[:, : 2 * hidden] = _sigmoid(
                projected[t, :, : 2 * hidden] + recurrent[:, : 2 * hidden]
            )
            r, z = act[:, :hidden], act[:, hidden : 2 * hidden]
            recurrent_n[t] = recurrent[:, 2 * hidden :]
            act[:, 2 * hidden :] = np.tanh(projected[t, :, 2 * hidden :] + r * recurrent_n[t])
            n = act[:, 2 * hidden :]
            hs[t + 1] = (1 - z) * n + z * hs[t]
        output = hs[1:]
        return output, (hs[-1],), (hs, acts, recurrent_n)

    def _backprop_layer(self, cache, grad_output, grad_end, weight_hh):
        hs, acts, recurrent_n = cache
        hidden = self.hidden_size
        (grad_h,) = grad_end
        grad_projected = np.empty_like(acts)  # (T, N, 3H)
        grad_recurrent = np.empty_like(acts)  # (T, N, 3H)
        for t in reversed(range(len(acts))):
            r, z, n = np.split(acts[t], 3, axis=1)
            h_prev = hs[t]
            grad_h = grad_h + grad_output[t]
            grad_n_pre = grad_h * (1 - z) * (1 - n * n)
            grad_z_pre = grad_h * (h_prev - n) * z * (1 - z)
            grad_r_pre = grad_n_pre * recurrent_n[t] * r * (1 - r)
            grad_projected[t, :, :hidden] = grad_r_pre
            grad_projected[t, :, hidden : 2 * hidden] = grad_z_pre
            grad_projected[t, :, 2 * hidden :] = grad_n_pre
            grad_recurrent[t, :, : 2 * hidden] = grad_projected[t, :, : 2 * hidden]
            grad_recurrent[t, :, 2 * hidden :] = grad_n_pre * r  # n reads r * (h @ W_hn.T + b_hn)
            grad_h = grad_h * z + grad_recurrent[t] @ weight_hh  # dLoss/dh_{t-1}
        return grad_projected, grad_recurrent, hs[:-1], (grad_h,)
