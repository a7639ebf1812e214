"""--jobs: worker processes share the study and its lock, and end with exactly --trials."""

from __future__ import annotations

import optuna
import pytest
from sweep_helpers import write_yaml

from dlcc.cli import main

SPACE = {"optim.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True}}


@pytest.mark.slow
def test_parallel_workers_run_exactly_the_trials_asked_for(workdir, recipe, capsys):
    jobs = 2
    space = write_yaml(workdir / "space.yaml", SPACE)
    argv = [str(recipe), "--space", str(space), "--out", "sweeps/p", "--set", "train.epochs=1"]
    assert main(["sweep", *argv, "--trials", "3", "--jobs", str(jobs)]) == 0
    assert f"{jobs} worker processes" in capsys.readouterr().out
    trials = optuna.load_study(
        study_name="p", storage=f"sqlite:///{workdir}/sweeps/optuna.db"
    ).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for trial in trials:
        assert (workdir / f"sweeps/p/trial_{trial.number:03d}/metrics.json").is_file()
