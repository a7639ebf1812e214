"""Learning-rate schedules: each sets ``optimizer.lr`` as a function of its step count.

One calling convention, as ``torch.optim.lr_scheduler``::

    scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=len(batches) * epochs)
    for x, y in batches:
        ...
        optimizer.step()
        scheduler.step()    # after optimizer.step()

Building a schedule already sets the first learning rate (the one the first
``optimizer.step()`` uses), equal to what the torch scheduler sets. Each ``step()``
advances the count by one and sets the next. Whether one step is a batch or an
epoch is the caller's choice; each class says what it was designed for.

Every schedule computes the learning rate from the step count in closed form (no
chaining of multiplications), so ``load_state_dict`` resumes it exactly. The formulas
are plain functions, `cosine_with_warmup_lr` and `onecycle_lr`, written once here: the
classes call them, and so does the PyTorch trainer's cosine schedule
(`dlcc.training.schedules`), so the two tracks cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

# ---- the formulas -------------------------------------------------------------------------
ONECYCLE_PCT_START = 0.3  # torch's OneCycleLR default; ScheduleConfig.pct_start uses it too


def cosine_with_warmup_lr(
    step: int,
    warmup_steps: int,
    total_steps: int,
    base_lr: float = 1.0,
    min_lr: float = 0.0,
    warmup_start_factor: float = 0.0,
) -> float:
    """Linear warm-up to ``base_lr``, then a cosine decay to ``min_lr``, at ``step``.

    With t = step and start = warmup_start_factor::

        t <  warmup_steps:  lr = base_lr * (start + (1 - start) * t / warmup_steps)
        t >= warmup_steps:  progress = min(1, (t - warmup_steps) / (total_steps - warmup_steps))
                            lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2

    The lr stays at ``min_lr`` after ``total_steps``. With the default ``base_lr=1`` it
    is a multiplier of the peak lr, as ``torch.optim.lr_scheduler.LambdaLR`` wants.
    """
    if step < warmup_steps:
        start = warmup_start_factor
        return base_lr * (start + (1.0 - start) * step / warmup_steps)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _onecycle_phase_ends(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """The step at which each phase of the 1cycle policy ends, as torch's ``OneCycleLR``."""
    warmup_end = float(pct_start * total_steps) - 1
    if three_phase:
        ends = [warmup_end, float(2 * pct_start * total_steps) - 2, total_steps - 1]
    else:
        ends = [warmup_end, total_steps - 1]
    phase_start = 0.0
    for phase_end in ends:
        if phase_end == phase_start:
            raise ValueError(
                f"OneCycleLR: total_steps={total_steps} with pct_start={pct_start} gives a "
                "phase of zero length; use more steps or another pct_start."
            )
        phase_start = phase_end
    return ends


def _anneal_through_phases(
    step: int, phase_ends: list[float], knots: list[float], anneal_strategy: str
) -> float:
    """The value at ``step`` going from ``knots[i]`` to ``knots[i + 1]`` over phase i."""
    phase_start = 0.0
    for i, phase_end in enumerate(phase_ends):
        if step <= phase_end or i == len(phase_ends) - 1:
            # Capped at 1: at step == total_steps torch extrapolates past the end of the
            # last phase (a negative lr with linear annealing); here it stays at the final
            # value. That lr is set after the last optimizer step anyway.
            fraction = min(1.0, (step - phase_start) / (phase_end - phase_start))
            start, end = knots[i], knots[i + 1]
            if anneal_strategy == "cos":
                return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
            return (end - start) * fraction + start
        phase_start = phase_end
    raise AssertionError("unreachable")


def onecycle_lr(
    step: int,
    total_steps: int,
    max_lr: float,
    pct_start: float = ONECYCLE_PCT_START,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> float:
    """The 1cycle policy's lr after ``step`` optimizer steps, as torch's ``OneCycleLR``.

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of the
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor`` (with
    ``three_phase``, first back to the initial lr). ``anneal_strategy``: "cos" or "linear".
    """
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    knots = (
        [initial_lr, max_lr, initial_lr, min_lr] if three_phase else [initial_lr, max_lr, min_lr]
    )
    phase_ends = _onecycle_phase_ends(total_steps, pct_start, three_phase)
    return _anneal_through_phases(step, phase_ends, knots, anneal_strategy)


# ---- the schedulers ------------------------------------------------------------------------
class LRScheduler:
    """Shared bits: ``optimizer``, ``base_lr`` (the lr when the schedule was built),
    ``last_step`` (number of ``step()`` calls), ``step``, ``get_lr``, state dicts.

    Subclasses implement ``_lr_at(step)``.
    """

    def __init__(self, optimizer) -> None:
        if not hasattr(optimizer, "lr"):
            raise ValueError(
                f"{type(self).__name__}: expected an optimizer with an `lr` attribute "
                f"(e.g. dlcc.numpy_nn.optim.SGD), got {type(optimizer).__name__}."
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_step = 0

    def _lr_at(self, step: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        self.optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        """The learning rate for the current step (the one the optimizer now has)."""
        return self._lr_at(self.last_step)

    def step(self) -> None:
        """Advance one step and set ``optimizer.lr`` for it."""
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"last_step", "base_lr"}`` as 0-d arrays (ready for ``np.savez``)."""
        return {
            "last_step": np.asarray(self.last_step, dtype=np.int64),
            "base_lr": np.asarray(self.base_lr),
        }

    def load_state_dict(self, state) -> None:
        """Restore the step count and base lr, and set the optimizer's lr to match."""
        missing = sorted({"last_step", "base_lr"} - set(state.keys()))
        if missing:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}. Was this "
                "state saved from a schedule?"
            )
        self.last_step = int(np.asarray(state["last_step"]))
        self.base_lr = float(np.asarray(state["base_lr"]))
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_step={self.last_step}, lr={self.get_lr():.4g})"


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps, as torch's ``StepLR``.

    ``lr = base_lr * gamma ** (last_step // step_size)``. Designed to be stepped once
    per **epoch** (step_size counts epochs).
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}.")
        if not gamma > 0:
            raise ValueError(f"StepLR: gamma must be > 0, got {gamma}.")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        self._apply()

    def _lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineWithWarmup(LRScheduler):
    """Linear warm-up to the base lr, then a cosine decay to ``min_lr``.

    Designed to be stepped once per **batch**. The lr at ``last_step`` is
    `cosine_with_warmup_lr` (the formula is written there), with the warm-up starting at
    ``warmup_start_factor`` times the base lr (0 by default, as in Hugging Face's
    ``get_cosine_schedule_with_warmup``). The lr stays at ``min_lr`` after
    ``total_steps``. base_lr is the optimizer's lr when the schedule is built.
    """

    def __init__(
        self,
        optimizer,
        warmup_steps: int,
        total_steps: int,
        min_lr: float = 0.0,
        warmup_start_factor: float = 0.0,
    ) -> None:
        super().__init__(optimizer)
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(
                f"CosineWithWarmup: warmup_steps must be an integer >= 0, got {warmup_steps}."
            )
        if int(total_steps) != total_steps or total_steps < max(1, warmup_steps):
            raise ValueError(
                f"CosineWithWarmup: total_steps must be an integer >= max(1, warmup_steps) = "
                f"{max(1, warmup_steps)}, got {total_steps}."
            )
        if not 0.0 <= min_lr <= self.base_lr:
            raise ValueError(
                f"CosineWithWarmup: min_lr must be in [0, base lr] = [0, {self.base_lr}] "
                f"(base lr is the optimizer's lr), got {min_lr}."
            )
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ValueError(
                f"CosineWithWarmup: warmup_start_factor must be in [0, 1], got "
                f"{warmup_start_factor}."
            )
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr = float(min_lr)
        self.warmup_start_factor = float(warmup_start_factor)
        self._apply()

    def _lr_at(self, step: int) -> float:
        return cosine_with_warmup_lr(
            step,
            self.warmup_steps,
            self.total_steps,
            self.base_lr,
            self.min_lr,
            self.warmup_start_factor,
        )


class OneCycleLR(LRScheduler):
    """The 1cycle policy, with the same lr sequence as torch's ``OneCycleLR``.

    Designed to be stepped once per **batch**, ``total_steps`` times in all. The lr
    rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start``
    of the steps, then anneals to ``max_lr / div_factor / final_div_factor``.
    With ``three_phase`` it first comes back down to the initial lr (symmetrically)
    before annealing. ``anneal_strategy`` is ``"cos"`` or ``"linear"``.

    ``cycle_momentum`` (default True, as torch) cycles the momentum inversely, between
    ``max_momentum`` and ``base_momentum``: ``betas[0]`` for Adam/AdamW, ``momentum``
    for SGD/RMSprop. Like torch, this turns momentum on for an SGD built without it.

    The optimizer's lr at construction is ignored (max_lr sets the scale). Stepping
    more than ``total_steps`` times raises ``ValueError``, as in torch. The one
    difference from torch: after the ``total_steps``-th ``step()`` (an lr no optimizer
    step uses in the usual loop) the lr is the final ``min_lr``, where torch
    extrapolates slightly past it (even below zero with ``"linear"``).
    """

    def __init__(
        self,
        optimizer,
        max_lr: float,
        total_steps: int,
        pct_start: float = ONECYCLE_PCT_START,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        super().__init__(optimizer)
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(
                f"OneCycleLR: total_steps must be a positive integer, got {total_steps}."
            )
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}.")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}."
            )
        if not (max_lr > 0 and div_factor > 0 and final_div_factor > 0):
            raise ValueError(
                f"OneCycleLR: max_lr, div_factor and final_div_factor must be > 0, got "
                f"{max_lr}, {div_factor}, {final_div_factor}."
            )
        self.total_steps = int(total_steps)
        self.max_lr = float(max_lr)
        self.pct_start = float(pct_start)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        self.phase_ends = _onecycle_phase_ends(self.total_steps, pct_start, three_phase)
        # The momentum falls while the lr rises, and back: its value at each phase boundary.
        self.momentum_knots = [max_momentum, base_momentum, max_momentum]
        if three_phase:
            self.momentum_knots.append(max_momentum)
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.base_lr = self.initial_lr

        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if not (0.0 <= base_momentum <= max_momentum < 1.0):
                raise ValueError(
                    f"OneCycleLR: need 0 <= base_momentum <= max_momentum < 1, got "
                    f"{base_momentum}, {max_momentum}."
                )
            if hasattr(optimizer, "betas"):
                self._momentum_attribute = "betas"
            elif hasattr(optimizer, "momentum"):
                self._momentum_attribute = "momentum"
            else:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True needs an optimizer with `momentum` or "
                    f"`betas`; {type(optimizer).__name__} has neither. Pass cycle_momentum=False."
                )
        self._apply()

    def _check_step(self, step: int) -> None:
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step} times, but total_steps is {self.total_steps}. "
                "Set total_steps to (batches per epoch) x epochs."
            )

    def _lr_at(self, step: int) -> float:
        self._check_step(step)
        return onecycle_lr(
            step,
            self.total_steps,
            self.max_lr,
            self.pct_start,
            self.div_factor,
            self.final_div_factor,
            self.anneal_strategy,
            self.three_phase,
        )

    def get_momentum(self) -> float:
        """The momentum (or beta1) for the current step."""
        self._check_step(self.last_step)
        return _anneal_through_phases(
            self.last_step, self.phase_ends, self.momentum_knots, self.anneal_strategy
        )

    def _apply(self) -> None:
        super()._apply()
        if self.cycle_momentum:
            momentum = float(self.get_momentum())
            if self._momentum_attribute == "betas":
                self.optimizer.betas = (momentum, *self.optimizer.betas[1:])
            else:
                self.optimizer.momentum = momentum
