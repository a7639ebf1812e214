"""A sweep's outputs: best.yaml (a recipe), sweep.json, and the two plots.

All are written atomically after each session, from the study in the database, so they
describe every session of a resumed sweep.
"""

from __future__ import annotations

import math
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.runs import strict_json
from dlcc.sweep.study import SweepSpec, counted, storage_url, trial_dir

BEST_RECIPE = "best.yaml"
SUMMARY = "sweep.json"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def best_settings(spec: SweepSpec, best) -> dict:
    """The resolved recipe of the best trial: what it trained, as a recipe."""
    from dlcc.sweep.space import with_params
    from dlcc.training.config import config_from_dict

    settings = with_params(spec.settings, best.params)
    settings["description"] = (
        f"The best trial of sweep {spec.name!r} (trial {best.number}, {spec.metric} "
        f"{best.value:.6g}, {spec.direction}) over {spec.space_file}, from recipe "
        f"{spec.recipe}."
    )
    settings["train"]["progress"] = True  # the sweep turns progress bars off
    return config_from_dict(settings).to_dict()


def write_best_recipe(spec: SweepSpec, best) -> Path:
    import yaml

    path = spec.sweep_dir / BEST_RECIPE
    header = (
        f"# dlcc sweep {spec.name}: the best trial ({best.number}), as a recipe.\n"
        f"# Train it with: dlcc train {path} --out runs/{spec.name}_best\n"
    )
    write_text_atomic(path, header + yaml.safe_dump(best_settings(spec, best), sort_keys=False))
    return path


def write_plots(spec: SweepSpec, study) -> dict[str, str]:
    """The optimisation history and the parameter importances as PNG; for each plot, the
    file written or why it was not drawn."""
    import warnings

    import optuna

    from dlcc.plots import save_figure

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    notes = {}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from optuna.visualization import matplotlib as optuna_plots

    if complete:
        axes = optuna_plots.plot_optimization_history(study)
        axes.set_title(f"{spec.name}: {spec.metric} ({spec.direction})")
        save_figure(axes.figure, spec.sweep_dir / HISTORY_PLOT)
        notes["optimization_history"] = HISTORY_PLOT
    else:
        notes["optimization_history"] = "not drawn: no trial has completed"

    varied = [
        param.key
        for param in spec.params
        if len({repr(trial.params.get(param.key)) for trial in complete}) > 1
    ]
    if len(complete) < 2:
        notes["param_importances"] = (
            f"not drawn: parameter importance needs at least 2 completed trials, "
            f"{len(complete)} completed"
        )
    elif not varied:
        notes["param_importances"] = (
            "not drawn: no parameter took more than one value over the completed trials"
        )
    else:
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=spec.seed)
            axes = optuna_plots.plot_param_importances(study, evaluator=evaluator, params=varied)
            save_figure(axes.figure, spec.sweep_dir / IMPORTANCE_PLOT)
            notes["param_importances"] = IMPORTANCE_PLOT
        except Exception as error:  # e.g. every completed trial has the same value
            notes["param_importances"] = f"not drawn: {type(error).__name__}: {error}"
    import matplotlib.pyplot as plt

    plt.close("all")
    return notes


def trial_summary(spec: SweepSpec, trial) -> dict:
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    intermediate = trial.intermediate_values
    return {
        "number": trial.number,
        "state": trial.state.name,
        "counted": counted(trial),
        "value": value,
        "params": trial.params,
        "epochs_reported": len(intermediate),
        "last_reported_epoch": max(intermediate) if intermediate else None,
        "run_dir": str(trial_dir(spec, trial.number)),
        "error": trial.user_attrs.get("error"),
        "interrupted": bool(trial.user_attrs.get("interrupted")),
    }


def write_summary(spec: SweepSpec, study, plots: dict, best_recipe: Path | None) -> dict:
    trials = study.trials
    states = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    summary = {
        "name": spec.name,
        "recipe": spec.recipe,
        "space_file": spec.space_file,
        "space": {param.key: param.describe() for param in spec.params},
        "metric": spec.metric,
        "direction": spec.direction,
        "sampler": spec.sampler,
        "seed": spec.seed,
        "pruner": (
            {
                "name": "median",
                "startup_trials": spec.startup_trials,
                "warmup_epochs": spec.warmup_epochs,
            }
            if spec.prune
            else {"name": "none"}
        ),
        "storage": storage_url(spec.sweep_dir),
        "mlflow_uri": spec.mlflow_uri if spec.track else None,
        "mlflow_parent_run_id": spec.parent_run_id,
        "trials_target": spec.trials,
        "trials_counted": sum(counted(t) for t in trials),
        "states": states,
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "run_dir": str(trial_dir(spec, best.number)),
            "recipe": str(best_recipe) if best_recipe else None,
        },
        "plots": plots,
        "trials": [trial_summary(spec, trial) for trial in trials],
    }
    write_text_atomic(spec.sweep_dir / SUMMARY, strict_json(summary))
    return summary


def write_outputs(spec: SweepSpec, study) -> dict:
    """best.yaml (when a trial completed), the plots, sweep.json; returns the summary."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best_recipe = write_best_recipe(spec, study.best_trial) if complete else None
    plots = write_plots(spec, study)
    return write_summary(spec, study, plots, best_recipe)


def finish_parent_run(spec: SweepSpec, summary: dict, status: str) -> None:
    """The parent run's figures and files, then its status (FINISHED, or FAILED when the
    session stopped on an error). Tracking never fails the sweep: errors are a warning."""
    if not spec.track or not spec.parent_run_id:
        return
    from dlcc.tracking import store
    from dlcc.tracking.sync import one_line, warn

    try:
        client = store.client(spec.mlflow_uri)
        run_id = spec.parent_run_id
        step = summary["trials_counted"]
        if summary["best"] is not None:
            client.log_metric(run_id, f"best_{spec.metric}", summary["best"]["value"], step=step)
        for state, count in summary["states"].items():
            client.log_metric(run_id, f"trials_{state.lower()}", count, step=step)
        files = [SUMMARY, BEST_RECIPE, HISTORY_PLOT, IMPORTANCE_PLOT]
        for name in files:
            if (spec.sweep_dir / name).is_file():
                client.log_artifact(run_id, str(spec.sweep_dir / name))
        if Path(spec.space_file).is_file():
            client.log_artifact(run_id, spec.space_file)
        client.set_terminated(run_id, status)
    except Exception as error:
        warn(f"experiment tracking: could not finish the sweep's MLflow run ({one_line(error)})")
