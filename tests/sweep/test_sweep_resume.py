"""--resume: the study survives the process (SQLite), --trials is the total the study ends
with, and a taken name needs --resume."""

from __future__ import annotations

import json

import optuna
from sweep_helpers import write_yaml

from dlcc.cli import main

SPACE = {"optim.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True}}


def load(workdir, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{workdir}/sweeps/optuna.db")


def test_resume_continues_the_study_up_to_the_total_and_names_are_guarded(workdir, recipe, capsys):
    space = write_yaml(workdir / "space.yaml", SPACE)
    base = [
        "sweep",
        str(recipe),
        "--space",
        str(space),
        "--out",
        "sweeps/r",
        "--set",
        "train.epochs=1",
    ]
    assert main([*base, "--trials", "2", "--sampler", "random"]) == 0
    first = [(t.number, t.params, t.value) for t in load(workdir, "r").trials]
    assert len(first) == 2

    # the same name again without --resume: refused, nothing run
    assert main([*base, "--trials", "3"]) == 2
    err = capsys.readouterr().err
    assert "a study named 'r' already exists" in err and "pass --resume" in err
    assert len(load(workdir, "r").trials) == 2

    # --resume --trials 3: one more trial, 3 in total; the first two untouched
    assert main([*base, "--trials", "3", "--sampler", "random", "--resume"]) == 0
    trials = load(workdir, "r").trials
    assert [(t.number, t.params, t.value) for t in trials[:2]] == first
    assert len(trials) == 3 and trials[2].state.name == "COMPLETE"
    assert trials[2].params != trials[0].params  # the sampler moved on, not restarted
    summary = json.loads((workdir / "sweeps/r/sweep.json").read_text())
    assert summary["trials_counted"] == 3 and len(summary["trials"]) == 3
    assert sorted(p.name for p in (workdir / "sweeps/r").glob("trial_*")) == [
        "trial_000",
        "trial_001",
        "trial_002",
    ]

    # already there: nothing to run
    capsys.readouterr()
    assert main([*base, "--trials", "3", "--resume"]) == 0
    assert "none to run" in capsys.readouterr().out
    assert len(load(workdir, "r").trials) == 3


def test_resume_refuses_another_space_other_settings_or_no_study(workdir, recipe, capsys):
    space = write_yaml(workdir / "space.yaml", SPACE)
    base = [
        "sweep",
        str(recipe),
        "--space",
        str(space),
        "--out",
        "sweeps/g",
        "--set",
        "train.epochs=1",
    ]
    assert main([*base, "--trials", "1"]) == 0
    other = write_yaml(
        workdir / "other.yaml", {"optim.lr": {"type": "float", "low": 0.001, "high": 0.3}}
    )
    args = [
        "sweep",
        str(recipe),
        "--space",
        str(other),
        "--out",
        "sweeps/g",
        "--set",
        "train.epochs=1",
    ]
    assert main([*args, "--trials", "2", "--resume"]) == 2
    assert "was started with space" in capsys.readouterr().err
    assert main([*base[:-1], "train.epochs=2", "--trials", "2", "--resume"]) == 2
    assert "train.epochs: 1 -> 2" in capsys.readouterr().err
    assert main([*base[:5], "sweeps/none", "--trials", "2", "--resume"]) == 2
    assert "there is no study named 'none'" in capsys.readouterr().err
    assert len(load(workdir, "g").trials) == 1
