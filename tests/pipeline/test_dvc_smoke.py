"""The smoke pipeline (pipelines/smoke) under a real `dvc repro`, in a temporary copy.

Run once: every stage runs. Run again: none does (`dvc status` agrees). Edit one recipe's
setting in params.yaml: exactly the stages that depend on it rerun (its training, its
evaluation and the plots), the others' outputs stay byte for byte and untouched on disk,
and the new value is in the retrained run's config.yaml.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml
from dvc_helpers import REPO, dvc_env, init_repo, need_dvc, run

pytestmark = pytest.mark.slow

STAGES = {
    "verify_digits",
    "numpy@cnn_digits",
    "train@mnist_cnn_smoke",
    "train@shakespeare_lstm_smoke",
    "eval@numpy_cnn_digits",
    "eval@mnist_cnn_smoke",
    "eval@shakespeare_lstm_smoke",
    "plots",
}
# Everything downstream of params.yaml:recipes.mnist_cnn_smoke in the pipeline's graph.
AFFECTED_BY_MNIST = {"train@mnist_cnn_smoke", "eval@mnist_cnn_smoke", "plots"}


def _copy_project(tmp: Path) -> Path:
    root = tmp / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "src", root / "src", ignore=ignore)
    shutil.copytree(REPO / "pipelines/smoke", root / "pipelines/smoke", ignore=ignore)
    (root / "recipes").mkdir()
    for name in ("mnist_cnn_smoke", "shakespeare_lstm_smoke"):
        shutil.copy2(REPO / "recipes" / f"{name}.yaml", root / "recipes")
    for leftover in ("runs", "results", "dvc.lock"):
        shutil.rmtree(root / "pipelines/smoke" / leftover, ignore_errors=True)
        (root / "pipelines/smoke" / leftover).unlink(missing_ok=True)
    return root


def _ran(output: str) -> set[str]:
    return {name.split(":")[-1] for name in re.findall(r"Running stage '([^']+)'", output)}


def _skipped(output: str) -> set[str]:
    return {name.split(":")[-1] for name in re.findall(r"Stage '([^']+)' didn't change", output)}


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime (ns) of every file under `folder`."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_smoke_pipeline_repro_is_incremental(tmp_path):
    dvc = need_dvc()
    root = _copy_project(tmp_path)
    env = dvc_env(tmp_path, root / "src")
    init_repo(root, env)
    pipeline = "pipelines/smoke/dvc.yaml"
    smoke = root / "pipelines/smoke"

    first = run([dvc, "repro", pipeline], root, env)
    assert _ran(first) == STAGES, first
    for name in ("numpy_cnn_digits", "mnist_cnn_smoke", "shakespeare_lstm_smoke"):
        assert (smoke / "runs" / name / "metrics.json").is_file()
        assert (smoke / "results/eval" / f"{name}.json").is_file()
        assert (smoke / "results/plots" / f"{name}.csv").is_file()
    # The stages train with --no-track: no MLflow store appears anywhere.
    assert not list(root.rglob("mlflow.db")) and not list(root.rglob("mlartifacts"))

    assert "up to date" in run([dvc, "status", pipeline], root, env)
    second = run([dvc, "repro", pipeline], root, env)
    assert _ran(second) == set(), second
    assert _skipped(second) == STAGES, second

    before = _snapshot(smoke)
    params_path = smoke / "params.yaml"
    # Edited as a person would, in place: re-dumping the file would reorder the numpy
    # mapping's keys, which reorders its unpacked flags, changes that stage's command and
    # reruns it too.
    text = params_path.read_text()
    line = "mnist_cnn_smoke: {train: {epochs: 2}}"
    assert line in text
    params_path.write_text(
        text.replace(line, "mnist_cnn_smoke: {train: {epochs: 2}, optim: {lr: 0.01}}")
    )
    status = run([dvc, "status", pipeline], root, env)
    assert "train@mnist_cnn_smoke" in status and "shakespeare" not in status, status

    third = run([dvc, "repro", pipeline], root, env)
    assert _ran(third) == AFFECTED_BY_MNIST, third
    assert _skipped(third) == STAGES - AFFECTED_BY_MNIST, third
    after = _snapshot(smoke)
    changed = {path for path in before if before[path] != after.get(path)}
    # dlcc train refused nothing: DVC removed the finished run before retraining it.
    assert "runs/mnist_cnn_smoke/metrics.json" in changed
    assert "results/eval/mnist_cnn_smoke.json" in changed
    untouched = ("runs/numpy_cnn_digits/", "runs/shakespeare_lstm_smoke/", "results/data/")
    moved = sorted(path for path in changed if path.startswith(untouched))
    assert moved == [], moved
    config = yaml.safe_load((smoke / "runs/mnist_cnn_smoke/config.yaml").read_text())
    assert config["optim"]["lr"] == 0.01 and config["train"]["epochs"] == 2
    assert "up to date" in run([dvc, "status", pipeline], root, env)
