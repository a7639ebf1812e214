"""The trainer's torch schedulers and the NumPy library's schedules: one formula, one
set of defaults, the same learning rate at every step of a run."""

import inspect

import numpy as np
import pytest
import torch

from dlcc.numpy_nn import optim as numpy_optim
from dlcc.numpy_nn import schedules as numpy_schedules
from dlcc.training import schedules as training_schedules
from dlcc.training.config import ScheduleConfig
from dlcc.training.schedules import build_scheduler

ONECYCLE_DEFAULTS = ("pct_start", "div_factor", "final_div_factor")


def defaults(function) -> dict:
    parameters = inspect.signature(function).parameters
    return {name: parameters[name].default for name in ONECYCLE_DEFAULTS}


def test_one_cycle_defaults_are_the_same_everywhere():
    expected = defaults(torch.optim.lr_scheduler.OneCycleLR)
    config = ScheduleConfig()
    assert {name: getattr(config, name) for name in ONECYCLE_DEFAULTS} == expected
    assert defaults(numpy_schedules.OneCycleLR) == expected
    assert defaults(numpy_schedules.onecycle_lr) == expected
    assert defaults(training_schedules.onecycle_lr) == expected  # Assignment 2's exercise


def run_both(kind, make_ours, make_theirs, total_steps, lr=0.05):
    """(our lrs and momenta, torch's), over a whole run, the first before any step."""
    pair = [(np.zeros(3), np.zeros(3))]
    parameter = torch.zeros(3, requires_grad=True)
    if kind == "sgd":
        ours_optimizer = numpy_optim.SGD(pair, lr=lr, momentum=0.9, nesterov=True)
        torch_optimizer = torch.optim.SGD([parameter], lr=lr, momentum=0.9, nesterov=True)
    else:
        ours_optimizer = numpy_optim.AdamW(pair, lr=lr)
        torch_optimizer = torch.optim.AdamW([parameter], lr=lr)
    ours, theirs = make_ours(ours_optimizer), make_theirs(torch_optimizer)

    def momentum_of(optimizer, group):
        if kind == "sgd":
            return optimizer.momentum if group is None else group["momentum"]
        return optimizer.betas[0] if group is None else group["betas"][0]

    ours_values, torch_values = [], []
    for step in range(total_steps + 1):
        group = torch_optimizer.param_groups[0]
        ours_values.append((ours_optimizer.lr, momentum_of(ours_optimizer, None)))
        torch_values.append((group["lr"], momentum_of(torch_optimizer, group)))
        if step < total_steps - 1:  # the lr after the last step is never used
            torch_optimizer.step()
            ours.step()
            theirs.step()
    return np.array(ours_values[:total_steps]), np.array(torch_values[:total_steps])


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
@pytest.mark.parametrize(("epochs", "steps_per_epoch"), [(6, 20), (3, 7), (1, 4)])
def test_numpy_one_cycle_with_its_defaults_matches_the_trainer_s_scheduler(
    kind, epochs, steps_per_epoch
):
    total_steps, peak_lr = epochs * steps_per_epoch, 0.03
    ours, theirs = run_both(
        kind,
        lambda optimizer: numpy_schedules.OneCycleLR(optimizer, peak_lr, total_steps),
        lambda optimizer: build_scheduler(
            optimizer, ScheduleConfig(name="onecycle"), peak_lr, total_steps, steps_per_epoch
        ),
        total_steps,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("epochs", "steps_per_epoch", "warmup_epochs"), [(6, 20, 1.0), (5, 3, 2)])
def test_numpy_cosine_matches_the_trainer_s_scheduler(epochs, steps_per_epoch, warmup_epochs):
    total_steps, peak_lr = epochs * steps_per_epoch, 0.1
    warmup = round(warmup_epochs * steps_per_epoch)
    ours, theirs = run_both(
        "sgd",
        # The trainer's warm-up starts at 1 / (warmup + 1) of the peak, so its first step learns.
        lambda optimizer: numpy_schedules.CosineWithWarmup(
            optimizer, warmup, total_steps, warmup_start_factor=1 / (warmup + 1)
        ),
        lambda optimizer: build_scheduler(
            optimizer,
            ScheduleConfig(name="cosine", warmup_epochs=warmup_epochs),
            peak_lr,
            total_steps,
            steps_per_epoch,
        ),
        total_steps,
        lr=peak_lr,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
