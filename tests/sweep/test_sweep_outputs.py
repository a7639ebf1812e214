"""A sweep's outputs: best.yaml loads as a recipe equal to the best trial's settings,
sweep.json agrees with the study, and plots that cannot be drawn say why."""

from __future__ import annotations

import json

import yaml
from sweep_helpers import prepared, write_yaml

from dlcc.runs import read_run
from dlcc.sweep.commands import run_sweep
from dlcc.sweep.space import get_dotted
from dlcc.training.config import load_recipe

SPACE = {
    "optim.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "model.options.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
    "optim.name": {"type": "categorical", "choices": ["sgd", "adam"]},
}


def test_best_recipe_round_trip_summary_and_plots(workdir, recipe, capsys):
    space = write_yaml(workdir / "space.yaml", SPACE)
    spec, study = prepared(
        str(recipe), "--space", str(space), "--trials", "3", "--out", "sweeps/out",
        "--sampler", "random", "--seed", "3", "--no-prune", "--set", "train.epochs=1",
    )  # fmt: skip
    summary = run_sweep(spec, study)
    folder = workdir / "sweeps/out"

    # the oracle: the study in the database, read afresh
    import optuna

    stored = optuna.load_study(study_name="out", storage=f"sqlite:///{workdir}/sweeps/optuna.db")
    best = stored.best_trial
    assert len(stored.trials) == 3 and all(t.state.name == "COMPLETE" for t in stored.trials)
    expected = max(t.value for t in stored.trials)
    assert best.value == expected

    # best.yaml: loads with dlcc train's loader, holds the best trial's values ...
    config = load_recipe(str(folder / "best.yaml"))
    settings = config.to_dict()
    for key, value in best.params.items():
        assert get_dotted(settings, key) == value
    # ... and equals what that trial trained (its config.yaml), but for the free settings
    trained = read_run(folder / f"trial_{best.number:03d}").settings
    for section in ("task", "data", "model", "optim", "schedule"):
        assert settings[section] == trained[section], section
    free = {"progress"}
    assert {k: v for k, v in settings["train"].items() if k not in free} == {
        k: v for k, v in trained["train"].items() if k not in free
    }
    # the trial's own metrics.json says the same value
    metrics = json.loads((folder / f"trial_{best.number:03d}/metrics.json").read_text())
    assert metrics["best_value"] == best.value

    written = json.loads((folder / "sweep.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["best"]["number"] == best.number and written["best"]["value"] == best.value
    assert [t["params"] for t in written["trials"]] == [t.params for t in stored.trials]
    assert written["states"] == {"COMPLETE": 3} and written["trials_counted"] == 3
    for name in ("optimization_history.png", "param_importances.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["plots"] == {
        "optimization_history": "optimization_history.png",
        "param_importances": "param_importances.png",
    }
    assert yaml.safe_load((folder / "best.yaml").read_text())["train"]["progress"] is True


def test_one_trial_or_one_value_gives_a_message_not_an_importance_plot(workdir, recipe):
    space = write_yaml(
        workdir / "space.yaml", {"optim.lr": {"type": "categorical", "choices": [0.1]}}
    )
    spec, study = prepared(
        str(recipe), "--space", str(space), "--trials", "1", "--out", "sweeps/one",
        "--set", "train.epochs=1",
    )  # fmt: skip
    summary = run_sweep(spec, study)
    assert summary["plots"]["param_importances"].startswith(
        "not drawn: parameter importance needs at least 2 completed trials, 1 completed"
    )
    assert (workdir / "sweeps/one/optimization_history.png").is_file()
    assert not (workdir / "sweeps/one/param_importances.png").exists()

    spec, study = prepared(
        str(recipe), "--space", str(space), "--trials", "2", "--out", "sweeps/one", "--resume",
        "--set", "train.epochs=1",
    )  # fmt: skip
    summary = run_sweep(spec, study)
    assert summary["states"] == {"COMPLETE": 2}
    assert summary["plots"]["param_importances"] == (
        "not drawn: no parameter took more than one value over the completed trials"
    )
