"""Part 4: the one-cycle learning-rate policy (`dlcc.training.schedules`): `onecycle_lr`
computed by hand, and the OneCycle branch of `build_scheduler`, both against
``torch.optim.lr_scheduler.OneCycleLR`` itself. A one-parameter model, no training loop.

When graded, `build_scheduler`'s scheduler is stepped in the learner's process (with its
optimiser, `a2_helpers.scheduled_rates`); its lrs come back as data.
"""

from __future__ import annotations

import torch
from a2_helpers import one_parameter_optimizer, run_schedule, scheduled_rates

from dlcc.training.schedules import onecycle_lr


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
    schedule = {"name": "onecycle", "pct_start": 0.3, "div_factor": 10.0, "final_div_factor": 100.0}
    run = scheduled_rates("sgd", 0.05, schedule, 40, 10)  # in the learner's process
    assert run["is_lr_scheduler"], (
        f"build_scheduler(onecycle): a torch LR scheduler expected (checkpoints save its "
        f"state_dict), got {run['scheduler']}"
    )
    got = run["lrs"]
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
