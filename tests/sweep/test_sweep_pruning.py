"""Median pruning: the loop's extra logger reports each epoch's validation figure and stops
a pruned trial, which ends as PRUNED with its finished epochs kept."""

from __future__ import annotations

import json

import optuna
import pytest
from sweep_helpers import prepared, write_yaml

from dlcc.sweep.commands import run_sweep
from dlcc.sweep.pruning import PruningLogger


class FakeTrial:
    """Records reports; prunes from epoch `prune_from` on."""

    def __init__(self, prune_from: int | None):
        self.prune_from = prune_from
        self.reports: list[tuple[float, int]] = []

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        return self.prune_from is not None and self.reports[-1][1] >= self.prune_from


def test_the_logger_reports_the_metric_at_each_epoch_and_raises_when_told():
    trial = FakeTrial(prune_from=3)
    logger = PruningLogger(trial, "val_accuracy")
    logger.log_metrics({"epoch": 1, "val_accuracy": 0.5, "train_loss": 1.0}, step=1)
    logger.log_metrics({"epoch": 2, "train_loss": 0.9}, step=2)  # no validation figure
    logger.log_metrics({"epoch": 2, "val_accuracy": float("nan")}, step=2)
    logger.log_metrics({"epoch": 2, "val_accuracy": 0.6}, step=2)
    assert trial.reports == [(0.5, 1), (0.6, 2)]
    assert logger.pruned_at is None
    with pytest.raises(optuna.TrialPruned, match=r"pruned at epoch 3: val_accuracy 0.4"):
        logger.log_metrics({"epoch": 3, "val_accuracy": 0.4}, step=3)
    assert logger.pruned_at == 3


def test_the_median_pruner_stops_the_clearly_worse_trial_after_one_epoch(workdir, recipe):
    space = write_yaml(
        workdir / "space.yaml", {"optim.lr": {"type": "categorical", "choices": [0.2, 1.0e-7]}}
    )
    spec, study = prepared(
        str(recipe), "--space", str(space), "--trials", "2", "--out", "sweeps/prune",
        "--startup-trials", "1", "--set", "train.epochs=2",
    )  # fmt: skip
    # known values: a good trial sets the median, then a learning rate that cannot learn
    for lr in (0.2, 1.0e-7):
        study.enqueue_trial({"optim.lr": lr})
    summary = run_sweep(spec, study)

    states = [trial.state.name for trial in study.trials]
    assert states == ["COMPLETE", "PRUNED"]
    good, bad = study.trials[0], study.trials[1]
    # the oracle: the median pruner's rule at epoch 1 with one finished trial
    assert bad.intermediate_values[1] < good.intermediate_values[1]
    assert list(bad.intermediate_values) == [1]  # stopped after its first epoch
    pruned_dir = workdir / "sweeps/prune/trial_001"
    history = json.loads((pruned_dir / "history.json").read_text())
    assert history["columns"]["epoch"] == [1]
    assert not (pruned_dir / "metrics.json").exists()  # not finished, not resumed later
    assert (pruned_dir / "run.json").is_file()
    # the finished trial trained every epoch
    finished = json.loads((workdir / "sweeps/prune/trial_000/metrics.json").read_text())
    assert finished["epochs"] == 2 and finished["best_value"] == good.value
    assert summary["states"] == {"COMPLETE": 1, "PRUNED": 1}
