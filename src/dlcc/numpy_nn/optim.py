"""Optimisers with torch.optim's update rules, updating NumPy arrays in place.

One calling convention, as in ``torch.optim``::

    optimizer = Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()

``model.parameters()`` is a list of ``(param, grad)`` array pairs; ``step`` writes
into each ``param`` in place, so the model sees the new values at its next forward.

Speed and dtype: the update is written with in-place ufuncs (``out=``, ``+=``) into a
per-parameter scratch array that is allocated once, so a step allocates nothing
parameter-sized. State (momentum, moments) has the parameter's dtype, and every
scalar is a Python float, which NumPy 2 never lets upcast a float32 array: float32
parameters are updated entirely in float32.

``state_dict()`` is flat ``str -> np.ndarray`` (scalars as 0-d arrays), so it can go
straight into ``np.savez``; ``load_state_dict`` takes that dict (or the loaded npz)
and training resumes exactly.

Left out compared with torch.optim: parameter groups, ``maximize``, ``amsgrad``,
``foreach``/``fused`` (all parameters form one group with one ``lr``).
"""

from __future__ import annotations

import math

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Optimizer:
    """Shared bits: the (param, grad) pairs, ``lr``, ``step_count``, per-parameter
    ``state``, ``zero_grad`` and ``state_dict``/``load_state_dict``.

    Subclasses list their hyperparameters in ``hyperparameter_names`` (saved in
    the state dict, as torch saves ``param_groups``) and implement ``_update``.
    """

    hyperparameter_names: tuple[str, ...] = ()

    def __init__(self, params, lr: float) -> None:
        self.param_pairs = self._check_param_pairs(params)
        self.lr = lr
        #: Number of completed ``step()`` calls (Adam's bias correction uses it).
        self.step_count = 0
        #: Per parameter, the named state arrays (e.g. ``{"momentum_buffer": ...}``).
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.param_pairs]
        # Reused parameter-sized work arrays, so that a step allocates nothing. Not state.
        self._scratch: list[list[np.ndarray]] = [[] for _ in self.param_pairs]

    # ---- learning rate: a validated Python float ---------------------------------------
    @property
    def lr(self) -> float:
        """Learning rate; schedules set it between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        value = float(value)  # an np.float64 here would upcast float32 updates
        if not value >= 0.0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {value}.")
        self._lr = value

    # ---- the public API -------------------------------------------------------------------
    def step(self) -> None:
        """Apply one update to every parameter, in place, from its current grad."""
        self.step_count += 1
        for index, (param, grad) in enumerate(self.param_pairs):
            self._update(index, param, grad, self.state[index])

    def zero_grad(self) -> None:
        """Fill every gradient with 0, in place (backward adds into grads)."""
        for _, grad in self.param_pairs:
            grad.fill(0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: ``lr``, ``step``, hyperparameters and state.

        Flat ``str -> np.ndarray`` with keys such as ``"lr"``, ``"step"``,
        ``"hyper.momentum"``, ``"state.0.momentum_buffer"``; arrays are copies.
        """
        state = {"lr": np.asarray(self.lr), "step": np.asarray(self.step_count, dtype=np.int64)}
        for name in self.hyperparameter_names:
            state[f"hyper.{name}"] = np.asarray(getattr(self, name))
        for index, param_state in enumerate(self.state):
            for name, array in param_state.items():
                state[f"state.{index}.{name}"] = array.copy()
        return state

    def load_state_dict(self, state) -> None:
        """Restore what `state_dict` returned (a dict, or the mapping ``np.load`` gives).

        Replaces lr, step count, hyperparameters and all state arrays. Raises
        ``ValueError`` on unknown keys, a different number of parameters, or shapes
        that do not match.
        """
        name = type(self).__name__
        keys = set(state.keys())
        expected_scalars = {"lr", "step"} | {f"hyper.{h}" for h in self.hyperparameter_names}
        missing = sorted(expected_scalars - keys)
        if missing:
            raise ValueError(
                f"{name}.load_state_dict: missing keys {missing}. Was this state saved "
                f"from a {name}?"
            )
        new_state: list[dict[str, np.ndarray]] = [{} for _ in self.param_pairs]
        for key in sorted(keys - expected_scalars):
            parts = key.split(".")
            if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
                raise ValueError(
                    f"{name}.load_state_dict: unexpected key {key!r}. Was this state saved "
                    f"from a {name}?"
                )
            index, state_name = int(parts[1]), parts[2]
            if index >= len(self.param_pairs):
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {index}, but this optimizer "
                    f"has {len(self.param_pairs)} parameters. Build it from the same model."
                )
            param = self.param_pairs[index][0]
            value = np.asarray(state[key])
            if value.shape != param.shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} has shape {value.shape}, but parameter "
                    f"{index} has shape {param.shape}. Build the optimizer from the same model."
                )
            new_state[index][state_name] = value.astype(param.dtype, copy=True)

        for hyper in self.hyperparameter_names:
            current = getattr(self, hyper)
            value = np.asarray(state[f"hyper.{hyper}"])
            if isinstance(current, bool):
                setattr(self, hyper, bool(value))
            elif isinstance(current, tuple):
                setattr(self, hyper, tuple(float(v) for v in value))
            else:
                setattr(self, hyper, float(value))
        self.lr = float(np.asarray(state["lr"]))
        self.step_count = int(np.asarray(state["step"]))
        self.state = new_state

    def __repr__(self) -> str:
        hypers = ", ".join(f"{h}={getattr(self, h)}" for h in self.hyperparameter_names)
        return f"{type(self).__name__}(lr={self.lr}, {hypers})"

    # ---- for subclasses ---------------------------------------------------------------------
    def _update(self, index: int, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    def _work(self, index: int, count: int) -> list[np.ndarray]:
        """``count`` scratch arrays shaped like parameter ``index``, allocated once."""
        scratch = self._scratch[index]
        while len(scratch) < count:
            scratch.append(np.empty_like(self.param_pairs[index][0]))
        return scratch

    def _state_array(self, state: dict, name: str, index: int) -> np.ndarray:
        """The state array ``name`` for parameter ``index``, created as zeros if absent."""
        if name not in state:
            state[name] = np.zeros_like(self.param_pairs[index][0])
        return state[name]

    def _check_param_pairs(self, params) -> list[tuple[np.ndarray, np.ndarray]]:
        name = type(self).__name__
        if hasattr(params, "parameters") and callable(params.parameters):
            raise ValueError(
                f"{name}: pass model.parameters() (a list of (param, grad) pairs), "
                f"not the model itself."
            )
        pairs = list(params)
        if not pairs:
            raise ValueError(
                f"{name}: got an empty parameter list. Does the model have parameters?"
            )
        for index, pair in enumerate(pairs):
            if not (
                isinstance(pair, tuple | list)
                and len(pair) == 2
                and all(isinstance(a, np.ndarray) for a in pair)
            ):
                raise ValueError(
                    f"{name}: parameter {index} is not a (param, grad) pair of NumPy arrays. "
                    "Pass model.parameters()."
                )
            param, grad = pair
            if param.dtype not in _FLOAT_DTYPES or grad.dtype != param.dtype:
                raise ValueError(
                    f"{name}: parameter {index} must be float32 or float64 with a grad of the "
                    f"same dtype; got param {param.dtype}, grad {grad.dtype}."
                )
            if grad.shape != param.shape:
                raise ValueError(
                    f"{name}: parameter {index} has shape {param.shape} but its grad has "
                    f"shape {grad.shape}."
                )
            if not param.flags.writeable:
                raise ValueError(f"{name}: parameter {index} is read-only; it is updated in place.")
        return [(param, grad) for param, grad in pairs]

    def _check_non_negative(self, **values: float) -> None:
        for hyper, value in values.items():
            if not value >= 0.0:
                raise ValueError(f"{type(self).__name__}: {hyper} must be >= 0, got {value}.")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Per parameter p with gradient g (all in place)::

        g = g + weight_decay * p                       (L2 penalty, if weight_decay)
        buf = g                       at the first step, else
        buf = momentum * buf + (1 - dampening) * g     (if momentum)
        g = g + momentum * buf   (nesterov)   or   g = buf
        p = p - lr * g
    """

    hyperparameter_names = ("momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self._check_non_negative(momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum}, dampening={dampening}."
            )
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)

    def _update(self, index, param, grad, state):
        (work,) = self._work(index, 1)
        direction = grad
        if self.weight_decay:
            # torch leaves .grad untouched, so the decayed gradient goes to scratch.
            np.multiply(param, self.weight_decay, out=work)
            work += grad
            direction = work
        # BEGIN SOLUTION SGD.step: update one parameter in place, with momentum
        lr, momentum = self.lr, self.momentum
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = direction.copy()
            else:
                buffer *= momentum
                if self.dampening:  # never with nesterov, so `direction` may be overwritten
                    np.multiply(direction, 1.0 - self.dampening, out=work)
                    buffer += work
                else:
                    buffer += direction
            if self.nesterov:
                # p -= lr * (direction + momentum * buffer), as two in-place updates
                # so that no temporary is needed.
                np.multiply(direction, -lr, out=work)
                param += work
                np.multiply(buffer, -lr * momentum, out=work)
                param += work
                return
            direction = buffer
        np.multiply(direction, -lr, out=work)  # no parameter-sized temporary
        param += work
        # END SOLUTION
        # BEGIN PROMPT
        # One parameter: param (updated IN PLACE, e.g. param -= ...: the model holds this
        # very array), direction (its gradient g, same shape), state (a dict kept between
        # steps for this parameter), self.lr and self.momentum. With momentum > 0, keep the
        # velocity in state["momentum_buffer"] (start it at zeros, or at g as torch does:
        # the same thing) and step along it; with momentum == 0, plain gradient descent.
        # self.nesterov and self.dampening (the class docstring) are optional extras: the
        # tests use neither.
        # END PROMPT


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (amsgrad not supported).

    Per parameter at step t (all in place)::

        g = g + weight_decay * p                     (L2 penalty, coupled; see AdamW)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    hyperparameter_names = ("betas", "eps", "weight_decay")
    _decoupled_weight_decay = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        name = type(self).__name__
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}.")
        self._check_non_negative(eps=eps, weight_decay=weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def _update(self, index, param, grad, state):
        lr, eps, weight_decay = self.lr, self.eps, self.weight_decay
        beta1, beta2 = self.betas
        step = self.step_count
        work, work2 = self._work(index, 2)
        exp_avg = self._state_array(state, "exp_avg", index)
        exp_avg_sq = self._state_array(state, "exp_avg_sq", index)

        if weight_decay and self._decoupled_weight_decay:
            param *= 1.0 - lr * weight_decay  # AdamW: shrink the weights directly
        elif weight_decay:
            np.multiply(param, weight_decay, out=work)
            work += grad
            grad = work

        exp_avg *= beta1
        np.multiply(grad, 1.0 - beta1, out=work2)
        exp_avg += work2
        exp_avg_sq *= beta2
        np.multiply(grad, grad, out=work2)
        work2 *= 1.0 - beta2
        exp_avg_sq += work2

        step_size = lr / (1.0 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
        denominator = np.sqrt(exp_avg_sq, out=work)  # `grad` in `work` is no longer needed
        denominator /= bias_correction2_sqrt
        denominator += eps
        np.divide(exp_avg, denominator, out=work)
        work *= -step_size
        param += work


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Same as `Adam`, except that the weights shrink directly,
    ``p = p * (1 - lr * weight_decay)``, before the Adam step, instead of adding
    ``weight_decay * p`` to the gradient.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Per parameter (all in place)::

        g = g + weight_decay * p                      (if weight_decay)
        v = alpha * v + (1 - alpha) * g**2
        avg = sqrt(v - g_avg**2) + eps, with g_avg = alpha * g_avg + (1 - alpha) * g
                                                      (centered), else sqrt(v) + eps
        buf = momentum * buf + g / avg;  p = p - lr * buf     (if momentum)
        p = p - lr * g / avg                                  (otherwise)
    """

    hyperparameter_names = ("alpha", "eps", "momentum", "weight_decay", "centered")

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(params, lr)
        self._check_non_negative(alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.centered = bool(centered)

    def _update(self, index, param, grad, state):
        lr, alpha, momentum, weight_decay = self.lr, self.alpha, self.momentum, self.weight_decay
        work, work2 = self._work(index, 2)
        square_avg = self._state_array(state, "square_avg", index)

        if weight_decay:
            np.multiply(param, weight_decay, out=work)
            work += grad
            grad = work

        square_avg *= alpha
        np.multiply(grad, grad, out=work2)
        work2 *= 1.0 - alpha
        square_avg += work2

        if self.centered:
            grad_avg = self._state_array(state, "grad_avg", index)
            grad_avg *= alpha
            np.multiply(grad, 1.0 - alpha, out=work2)
            grad_avg += work2
            np.multiply(grad_avg, grad_avg, out=work2)
            np.subtract(square_avg, work2, out=work2)
            # Mathematically >= 0; rounding can leave -1e-20, whose sqrt would be NaN.
            np.maximum(work2, 0.0, out=work2)
            average = np.sqrt(work2, out=work2)
        else:
            average = np.sqrt(square_avg, out=work2)
        average += self.eps

        np.divide(grad, average, out=work2)  # g / avg
        if momentum > 0:
            buffer = self._state_array(state, "momentum_buffer", index)
            buffer *= momentum
            buffer += work2
            np.multiply(buffer, -lr, out=work2)
        else:
            work2 *= -lr
        param += work2


def clip_grad_norm(parameters, max_norm: float) -> float:
    """Scale every gradient in place so that their global L2 norm is at most `max_norm`.

    torch.nn.utils.clip_grad_norm_'s rule: the total norm is the L2 norm of all the
    gradients as one vector; when it exceeds `max_norm`, each gradient is multiplied by
    ``max_norm / (total_norm + 1e-6)``. `parameters` is ``model.parameters()``, the
    (param, grad) pairs. Returns the total norm before clipping, as a Python float (inf
    or nan when a gradient is not finite; the gradients are then left as they are).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}.")
    grads = [grad for _, grad in parameters]
    total = math.sqrt(sum(float(np.vdot(grad, grad)) for grad in grads))
    if not math.isfinite(total):
        return total
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for grad in grads:
            grad *= coefficient  # a Python float: float32 grads stay float32
    return total
