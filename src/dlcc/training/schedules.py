"""Learning-rate schedules, all stepped once per optimiser step (not per epoch).

Stepping per batch matters for warm-up and one-cycle: over a short run an epoch-level
schedule would move in a handful of large jumps.
"""

from __future__ import annotations

import math

import torch

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
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=peak_lr,
            total_steps=total_steps,
            pct_start=schedule.pct_start,
            div_factor=schedule.div_factor,
            final_div_factor=schedule.final_div_factor,
        )
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


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak lr: linear 0 -> 1 over warm-up, then cosine 1 -> 0."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
