"""A sweep killed with SIGKILL loses only the trial it was running; --resume marks that
trial FAIL (interrupted, not counted) and completes the study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from sweep_helpers import prepared, write_yaml

from dlcc.sweep.commands import run_sweep

SPACE = {"optim.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True}}


@pytest.mark.slow
def test_a_killed_sweep_keeps_its_finished_trials_and_resume_completes_it(workdir, recipe):
    space = write_yaml(workdir / "space.yaml", SPACE)
    argv = [str(recipe), "--space", str(space), "--out", "sweeps/k", "--set", "train.epochs=8"]
    env = {**os.environ, "DLCC_TRACK": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    log = (workdir / "sweep.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dlcc", "sweep", *argv, "--trials", "3"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    storage = f"sqlite:///{workdir}/sweeps/optuna.db"
    deadline = time.monotonic() + 240  # a bound on a loaded machine, not a measurement
    try:
        while True:  # kill it while trial 1 runs, after trial 0 has been told
            assert process.poll() is None, (workdir / "sweep.log").read_text()
            assert time.monotonic() < deadline, "the sweep never reached its second trial"
            states = []
            if (workdir / "sweeps/optuna.db").exists():
                try:
                    study = optuna.load_study(study_name="k", storage=storage)
                    states = [t.state.name for t in study.trials]
                except Exception:  # not created yet, or locked for a moment
                    states = []
            if states == ["COMPLETE", "RUNNING"]:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    before = optuna.load_study(study_name="k", storage=storage).trials
    assert [t.state.name for t in before] == ["COMPLETE", "RUNNING"]  # what SIGKILL left

    spec, study = prepared(*argv, "--trials", "2", "--resume")
    summary = run_sweep(spec, study)
    after = optuna.load_study(study_name="k", storage=storage).trials
    # trial 0 kept as it was; trial 1 cut off: FAIL, marked, not counted; trial 2 new
    assert (after[0].state.name, after[0].params, after[0].value) == (
        "COMPLETE",
        before[0].params,
        before[0].value,
    )
    assert after[1].state.name == "FAIL" and after[1].user_attrs["interrupted"] is True
    assert after[2].state.name == "COMPLETE" and len(after) == 3
    assert summary["trials_counted"] == 2
    assert not (workdir / "sweeps/k/trial_001/metrics.json").exists()
    assert (workdir / "sweeps/k/trial_002/metrics.json").is_file()
