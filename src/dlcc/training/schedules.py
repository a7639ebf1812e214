"""Learning-rate schedules, all stepped once per optimiser step (not per epoch).

Stepping per batch matters for warm-up and one-cycle: over a short run an epoch-level
schedule would move in a handful of large jumps.

The trainer's schedules are torch's own ``OneCycleLR`` and ``LambdaLR`` over the
formulas of `dlcc.numpy_nn.schedules`, written once there for both tracks.
`onecycle_lr` below is Assignment 2's exercise (the learner writes the one-cycle
formula, checked against torch's ``OneCycleLR``); the trainer does not call it.
"""

from __future__ import annotations

import math
import warnings

import torch

from dlcc.numpy_nn.schedules import ONECYCLE_PCT_START, cosine_with_warmup_lr
from dlcc.training.config import ScheduleConfig


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleConfig,
    peak_lr: float,
    total_steps: int,
    steps_per_epoch: int,
):
    """A torch LR scheduler for `total_steps` optimiser steps, or None for a constant lr."""
    total_steps = max(1, total_steps)
    if schedule.name == "none":
        return None
    if schedule.name == "onecycle":
        # BEGIN SOLUTION build_scheduler: torch's OneCycleLR over total_steps, from the config
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=peak_lr,
            total_steps=total_steps,
            pct_start=schedule.pct_start,
            div_factor=schedule.div_factor,
            final_div_factor=schedule.final_div_factor,
        )
        # END SOLUTION
        # BEGIN PROMPT
        # Return torch.optim.lr_scheduler.OneCycleLR for this optimizer: peak_lr is its
        # max_lr, and it runs for total_steps optimiser steps (not epochs). Pass on the
        # schedule's pct_start, div_factor and final_div_factor; keep OneCycleLR's default
        # momentum cycling.
        # END PROMPT
    if schedule.name == "cosine":
        warmup = min(total_steps - 1, round(schedule.warmup_epochs * steps_per_epoch))
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup, total_steps)
        )
    if schedule.name == "step":
        milestones = sorted(round(epoch * steps_per_epoch) for epoch in schedule.step_epochs)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: schedule.gamma ** sum(step >= milestone for milestone in milestones),
        )
    raise ValueError(f"unknown schedule {schedule.name!r}")  # config.check_config prevents it


def epochs_within_budget(seconds: list[float], budget: float, epochs: int) -> int:
    """The epochs a run under train.time_budget will have in all, as far as one can tell.

    seconds: the training seconds of the epochs done so far. The run keeps them and adds
    as many more as fit in `budget` at the last epoch's pace (the rule by which the loop
    stops: `dlcc.training.loop.budget_spent`), at most `epochs` in all. With none done yet
    there is no pace to go by: `epochs`.
    """
    if not seconds:
        return epochs
    done, spent, pace = len(seconds), float(sum(seconds)), float(seconds[-1])
    more = int((budget - spent) // pace) if pace > 0 else epochs
    return max(done, min(epochs, done + max(0, more)))


def refit_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleConfig,
    peak_lr: float,
    total_steps: int,
    steps_per_epoch: int,
    steps_done: int,
):
    """`build_scheduler` over a new `total_steps`, moved on to step `steps_done`.

    After it the optimiser's learning rate (and one-cycle's momentum) is the new
    schedule's at `steps_done`: train.fit_budget's re-planning, when fewer (or more)
    epochs fit in the time budget than planned.
    """
    scheduler = build_scheduler(optimizer, schedule, peak_lr, total_steps, steps_per_epoch)
    if scheduler is not None:
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore")
            for _ in range(min(steps_done, max(1, total_steps))):
                scheduler.step()
    return scheduler


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak lr: linear warm-up to 1, then cosine 1 -> 0.

    `dlcc.numpy_nn.schedules.cosine_with_warmup_lr` with the warm-up starting at
    1 / (warmup_steps + 1), not 0, so that the first optimiser step already learns:
    the multiplier is (step + 1) / (warmup_steps + 1) during warm-up.
    """
    return cosine_with_warmup_lr(
        step, warmup_steps, total_steps, warmup_start_factor=1.0 / (warmup_steps + 1)
    )


def onecycle_lr(
    step: int,
    total_steps: int,
    peak_lr: float,
    pct_start: float = ONECYCLE_PCT_START,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """The learning rate of the one-cycle policy (Smith & Topin, 2018) at optimiser step
    `step` (0-based), as ``torch.optim.lr_scheduler.OneCycleLR`` computes it (cosine
    annealing, two phases). A way to see, print or plot the schedule without an optimiser.

    Assignment 2's exercise, graded against torch's ``OneCycleLR``; the trainer uses
    torch's scheduler (`build_scheduler`). The NumPy library has its own copy of the formula
    (left out of Assignment 2's release); the defaults are the same in all three.

    Warm-up: from initial = peak_lr / div_factor up to peak_lr, reached at step
    warmup_end = pct_start * total_steps - 1. Then down to
    final = initial / final_div_factor at step total_steps - 1. Within a phase from
    `start` to `end`, at fraction t in [0, 1] of the way, the lr is the half cosine
    end + (start - end) * (1 + cos(pi * t)) / 2.

    Args:
        step: 0 <= step <= total_steps (the scheduler's count of steps taken).
        total_steps: the optimiser steps of the whole run.
        peak_lr: the maximum learning rate.
        pct_start: fraction of the steps spent warming up.
        div_factor: initial lr = peak_lr / div_factor.
        final_div_factor: final lr = initial lr / final_div_factor.
    """
    # BEGIN SOLUTION onecycle_lr: cosine warm-up to peak_lr, then cosine annealing
    initial_lr = peak_lr / div_factor
    final_lr = initial_lr / final_div_factor
    warmup_end = pct_start * total_steps - 1

    def half_cosine(start: float, end: float, fraction: float) -> float:
        return end + (start - end) * (1.0 + math.cos(math.pi * fraction)) / 2.0

    if step <= warmup_end:
        return half_cosine(initial_lr, peak_lr, step / warmup_end)
    fraction = (step - warmup_end) / (total_steps - 1 - warmup_end)
    return half_cosine(peak_lr, final_lr, fraction)
    # END SOLUTION
    # BEGIN PROMPT
    # Work out initial_lr, final_lr and warmup_end (see the docstring), write the half
    # cosine from start to end as a small function of the fraction t, and use it for the
    # phase `step` falls in: warm-up while step <= warmup_end, annealing after.
    # END PROMPT
