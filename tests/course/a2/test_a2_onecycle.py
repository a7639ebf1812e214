"""Part 4: the one-cycle learning-rate policy (`dlcc.training.schedules`): `onecycle_lr`
computed by hand, and the OneCycle branch of `build_scheduler`, both against
``torch.optim.lr_scheduler.OneCycleLR`` itself. A one-parameter model, no training loop.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.training.config import ScheduleConfig
from dlcc.training.schedules import build_scheduler, onecycle_lr


def one_parameter_optimizer(kind: str, lr: float) -> torch.optim.Optimizer:
    parameters = [nn.Parameter(torch.zeros(2))]
    if kind == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9)
    return torch.optim.AdamW(parameters, lr=lr)


def momentum_of(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group["momentum"]


def run_schedule(optimizer, scheduler, steps: int) -> tuple[list[float], list[float]]:
    """The lr and momentum (beta1 for Adam) each of `steps` optimiser steps uses."""
    lrs, momenta = [], []
    for _ in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        momenta.append(float(momentum_of(optimizer.param_groups[0])))
        optimizer.step()
        scheduler.step()
    return lrs, momenta


def torch_onecycle(kind, total_steps, peak_lr, pct_start, div_factor, final_div_factor):
    optimizer = one_parameter_optimizer(kind, peak_lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=peak_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    return run_schedule(optimizer, scheduler, total_steps)


def check_onecycle_lr(total_steps, peak_lr, pct_start, div_factor, final_div_factor) -> None:
    expected, _ = torch_onecycle(
        "sgd", total_steps, peak_lr, pct_start, div_factor, final_div_factor
    )
    settings = (
        f"total_steps={total_steps}, peak_lr={peak_lr:g}, pct_start={pct_start:g}, "
        f"div_factor={div_factor:g}, final_div_factor={final_div_factor:g}"
    )
    for step, want in enumerate(expected):
        got = onecycle_lr(step, total_steps, peak_lr, pct_start, div_factor, final_div_factor)
        if not isinstance(got, int | float) or abs(got - want) > 1e-9 * peak_lr:
            what = "the initial lr peak_lr / div_factor" if step == 0 else "OneCycleLR's lr"
            raise AssertionError(
                f"onecycle_lr(step={step}, {settings}) = {got!r}; expected {want:.6g} ({what})"
            )


def test_onecycle_lr_matches_torch():
    check_onecycle_lr(100, 0.1, 0.25, 25.0, 1e4)
    check_onecycle_lr(37, 3e-3, 0.3, 10.0, 100.0)
    check_onecycle_lr(12, 1.0, 0.5, 5.0, 10.0)


def test_build_scheduler_onecycle_follows_the_config():
    schedule = ScheduleConfig(
        name="onecycle", pct_start=0.3, div_factor=10.0, final_div_factor=100.0
    )
    optimizer = one_parameter_optimizer("sgd", 0.05)
    scheduler = build_scheduler(optimizer, schedule, 0.05, 40, 10)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler), (
        f"build_scheduler(onecycle): a torch LR scheduler expected (checkpoints save its "
        f"state_dict), got {type(scheduler).__name__}"
    )
    got, _ = run_schedule(optimizer, scheduler, 40)
    expected, _ = torch_onecycle("sgd", 40, 0.05, 0.3, 10.0, 100.0)
    if abs(got[0] - expected[0]) > 1e-12:
        raise AssertionError(
            f"build_scheduler(onecycle): lr at step 0 is {got[0]:.4g}; expected "
            f"{expected[0]:.4g} = peak_lr / schedule.div_factor"
        )
    for step, (have, want) in enumerate(zip(got, expected, strict=True)):
        assert abs(have - want) <= 1e-9 * 0.05, (
            f"build_scheduler(onecycle): lr at step {step} of 40 is {have:.6g}; expected "
            f"{want:.6g} (OneCycleLR with max_lr=peak_lr, total_steps=total_steps and the "
            "schedule's pct_start, div_factor, final_div_factor)"
        )
