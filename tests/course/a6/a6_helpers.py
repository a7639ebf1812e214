"""Helpers shared by the Assignment 6 graded tests (imported by name: this folder is on
sys.path). Nothing here calls the reference's solution regions: the oracles are hashlib, the
MLflow client reading a store, the run directories' own files, DVC itself, and rules written
in the tests.

What crosses to the learner's process is data. The runs are real run directories kept in
`runs/` (conftest.py): the learner's functions read them as data, or from a copy of the
MLflow database they were uploaded to, made in the learner's process from its bytes
(`learner_store`), since the learner's process cannot see this process's files. A dvc.yaml
the learner's functions build comes back as a dict and is written, checked and run here by
DVC, after every stage's command has been checked word for word against the expected one.

A release's package has every assignment's training code stubbed (a learner grades a
starter with it), so the pipeline's stages run `STAND_IN` as their `python`: a stand-in for
``python -m dlcc train`` and ``eval`` that applies the stage's params.yaml settings to the
recipe with dlcc's own recipe code, as `dlcc train --params` does, and writes a run
directory and figures that are a fixed function of the settings. DVC is what is tested: which
stages run, when, and what `dvc metrics diff` shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dlcc.course.remote import learner_side

BIN = Path(sys.executable).parent


# ---- the learner's process -------------------------------------------------------------------
@learner_side
def learner_store(db: bytes) -> str:
    """A copy of an MLflow SQLite database (its bytes) in a fresh folder of the learner's
    process; its tracking URI."""
    folder = Path(tempfile.mkdtemp(prefix="a6-store-"))
    (folder / "mlflow.db").write_bytes(db)
    return f"sqlite:///{folder / 'mlflow.db'}"


# ---- runs trained here -----------------------------------------------------------------------
def train_numpy_run(out: Path, **overrides) -> Path:
    """A NumPy MLP on the embedded digits, one epoch, cosine schedule, into `out`."""
    from dlcc.numpy_trainer.run import train_numpy_run as train
    from dlcc.numpy_trainer.settings import resolve_settings

    settings = resolve_settings(
        "mlp", "digits", {"epochs": 1, "schedule": "cosine", "hidden": [32], **overrides}
    )
    train(settings, out, progress=False, command=["dlcc", "numpy", "train", "(a6 test)"])
    return out


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def history_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """history.json's columns as (epoch, value) pairs, nulls left out (what the store holds)."""
    columns = read_json(run_dir / "history.json")["columns"]
    return {
        name: [(e, v) for e, v in zip(columns["epoch"], values, strict=True) if v is not None]
        for name, values in columns.items()
        if name != "epoch"
    }


# ---- DVC, hermetic and offline ---------------------------------------------------------------
def dvc_env(tmp: Path) -> dict:
    """dvc's (and its stages') environment: no config, cache or analytics outside `tmp`, this
    Python first on PATH, and the package this process imported on PYTHONPATH."""
    import dlcc

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.pop("DLCC_TRACK", None)
    (tmp / "home").mkdir(exist_ok=True)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(Path(dlcc.__file__).resolve().parents[1]),
        HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "home/.config"),
        XDG_CACHE_HOME=str(tmp / "home/.cache"),
        DVC_NO_ANALYTICS="1",
        DVC_STUDIO_OFFLINE="1",
        DVC_GLOBAL_CONFIG_DIR=str(tmp / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(tmp / "dvc-system"),
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"),
        OMP_NUM_THREADS="1",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="a6",
        GIT_AUTHOR_EMAIL="a6@example.invalid",
        GIT_COMMITTER_NAME="a6",
        GIT_COMMITTER_EMAIL="a6@example.invalid",
    )
    return env


def dvc(args: list[str], cwd: Path, env: dict, check: bool = True) -> str:
    """Run dvc (beside this Python); stdout + stderr; an assertion with both on failure."""
    executable = shutil.which("dvc", path=str(BIN)) or "dvc"
    done = subprocess.run(
        [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=400
    )
    output = done.stdout + done.stderr
    if check:
        assert done.returncode == 0, f"dvc {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def git(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def dvc_repository(root: Path, env: dict) -> None:
    """`git init` and `dvc init` in `root`, analytics and update checks off."""
    root.mkdir(parents=True, exist_ok=True)
    git(["init", "-q"], root, env)
    dvc(["init", "-q"], root, env)
    dvc(["config", "core.analytics", "false"], root, env)
    dvc(["config", "core.check_update", "false"], root, env)


STAND_IN = r'''"""A stand-in for `python -m dlcc train|eval` in the A6 pipeline tests."""
import json
import math
import sys
from pathlib import Path

from dlcc.training.config import dump_config, load_recipe, read_params

words = sys.argv[1:]
if words[:2] != ["-m", "dlcc"] or words[2] not in ("train", "eval"):
    sys.exit(f"stand-in: expected -m dlcc train|eval ..., got {words}")
if words[2] == "train":  # -m dlcc train RECIPE --params SPEC --out DIR --no-track --no-progress
    recipe, spec, out = words[3], words[5], Path(words[7])
    settings, label = read_params(spec)
    config = load_recipe(recipe, settings=settings, settings_source=label)
    lr, seed = config.optim.lr, config.train.seed
    accuracy = round(0.6 + 0.3 * math.exp(-((math.log10(lr) + 2) ** 2)) + 0.01 * seed, 9)
    out.mkdir(parents=True, exist_ok=False)
    (out / "config.yaml").write_text(dump_config(config))
    metrics = {"test_accuracy": accuracy, "test_loss": round(1.0 - accuracy, 9)}
    (out / "metrics.json").write_text(json.dumps(metrics))
else:  # -m dlcc eval RUN_DIR --json FILE
    metrics = json.loads((Path(words[3]) / "metrics.json").read_text())
    figures = Path(words[5])
    figures.parent.mkdir(parents=True, exist_ok=True)
    figures.write_text(
        json.dumps({"accuracy": metrics["test_accuracy"], "loss": metrics["test_loss"]})
    )
'''


def stand_in_python(folder: Path) -> Path:
    """folder/bin/python: runs STAND_IN with this Python; put folder/bin first on PATH."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    script = folder / "dlcc_stand_in.py"
    script.write_text(STAND_IN)
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    python.chmod(0o755)
    return python


def sweep_summary(direction: str, trials: list[tuple]) -> dict:
    """A sweep.json as `dlcc sweep` writes it (the fields `ranked_trials` reads, and others
    beside them), from (number, state, value, params) tuples."""
    return {
        "name": "a6-test",
        "recipe": "recipes/mnist_cnn_smoke.yaml",
        "metric": "val_accuracy" if direction == "maximize" else "val_loss",
        "direction": direction,
        "sampler": "tpe",
        "seed": 0,
        "trials_target": len(trials),
        "best": None,
        "trials": [
            {
                "number": number,
                "state": state,
                "counted": state != "RUNNING",
                "value": value,
                "params": params,
                "epochs_reported": 2,
                "last_reported_epoch": 2,
                "run_dir": f"runs/sweeps/a6-test/trial_{number:03d}",
                "error": None,
                "interrupted": False,
            }
            for number, state, value, params in trials
        ],
    }
