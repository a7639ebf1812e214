"""Part 4: a DVC pipeline (`training_stage` and `evaluation_stage` in `dlcc.pipeline.stages`).
The stages are checked against the command, dependencies, parameters and outputs written
out in the test; then the learner's dvc.yaml (every stage's command first checked word for
word, so nothing else is run) is written into a fresh DVC repository here, read by DVC
(`dvc dag`, `dvc status`) and run offline with `dvc repro`: it "trains" a recipe and
evaluates it (`a6_helpers.STAND_IN` stands in for dlcc's training and evaluation, which a
release's package has stubbed); a second `dvc repro` runs nothing; a changed setting in
params.yaml reruns the training and the evaluation, and `dvc metrics diff` shows the
metrics' change."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml
from a6_helpers import dvc, dvc_env, dvc_repository, git, read_json, stand_in_python

from dlcc.pipeline.stages import evaluation_stage, pipeline_document, training_stage

RECIPE = {
    "description": "a6: the smallest classifier, for a pipeline test",
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {"name": "small_cnn", "options": {"widths": [4, 8], "dropout": 0.0}},
    "optim": {"name": "adamw", "lr": 0.01},
    "schedule": {"name": "cosine"},
    "train": {"epochs": 1, "seed": 0},
}


def train_words(python, name, recipe):
    return [python, "-m", "dlcc", "train", recipe, "--params", f"params.yaml:recipes.{name}",
            "--out", f"runs/{name}", "--no-track", "--no-progress"]  # fmt: skip


def eval_words(python, name):
    return [python, "-m", "dlcc", "eval", f"runs/{name}", "--json", f"results/{name}.json"]


def plain(value):
    """A stage as plain data (lists for tuples), for comparing with the expected one."""
    return json.loads(json.dumps(value))


def test_training_stage():
    got = plain(training_stage("mnist_cnn_smoke", "recipes/mnist_cnn_smoke.yaml"))
    assert got == {
        "cmd": shlex.join(train_words("python", "mnist_cnn_smoke", "recipes/mnist_cnn_smoke.yaml")),
        "deps": ["recipes/mnist_cnn_smoke.yaml"],
        "params": ["recipes.mnist_cnn_smoke"],
        "outs": ["runs/mnist_cnn_smoke"],
    }


def test_training_stage_quotes_paths():
    python, recipe = "/opt/my python/bin/python3", "../my configs/unet's.yaml"
    got = plain(training_stage("unet", recipe, python))
    assert shlex.split(got["cmd"]) == train_words(python, "unet", recipe)
    assert got["deps"] == [recipe] and got["outs"] == ["runs/unet"]


def test_evaluation_stage():
    got = plain(evaluation_stage("digits_mlp", "python3"))
    assert got == {
        "cmd": shlex.join(eval_words("python3", "digits_mlp")),
        "deps": ["runs/digits_mlp"],
        "metrics": [{"results/digits_mlp.json": {"cache": False}}],
    }


def checked_pipeline(names: list[str], python: str) -> dict:
    """The learner's dvc.yaml for `names` (recipes/NAME.yaml), as data, after checking that
    it has exactly the expected stages and that each one's command is the expected one."""
    document = plain(pipeline_document({n: f"recipes/{n}.yaml" for n in names}, python))
    expected = {f"{kind}_{n}" for n in names for kind in ("train", "eval")}
    assert set(document["stages"]) == expected
    for name in names:
        train, evaluate = document["stages"][f"train_{name}"], document["stages"][f"eval_{name}"]
        assert shlex.split(train["cmd"]) == train_words(python, name, f"recipes/{name}.yaml")
        assert shlex.split(evaluate["cmd"]) == eval_words(python, name)
    return document


def test_dvc_reads_the_pipeline(tmp_path):
    env = dvc_env(tmp_path)
    root = tmp_path / "project"
    dvc_repository(root, env)
    names = ["alpha", "beta"]
    document = checked_pipeline(names, "python")
    (root / "recipes").mkdir()
    for name in names:
        (root / "recipes" / f"{name}.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "dvc.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "params.yaml").write_text(yaml.safe_dump({"recipes": {n: {} for n in names}}))
    dag = dvc(["dag", "--dot"], root, env)
    for name in names:
        assert f"train_{name}" in dag and f"eval_{name}" in dag
        assert f'"train_{name}" -> "eval_{name}"' in dag, dag
    stale = json.loads(dvc(["status", "--json"], root, env))
    assert set(stale) == {f"{kind}_{n}" for n in names for kind in ("train", "eval")}


def test_dvc_repro_runs_the_pipeline_and_a_change_shows_in_metrics_diff(tmp_path):
    env = dvc_env(tmp_path)
    root = tmp_path / "project"
    dvc_repository(root, env)
    python = stand_in_python(tmp_path / "stand-in")
    env["PATH"] = f"{python.parent}:{env['PATH']}"
    document = checked_pipeline(["tiny"], "python")
    (root / "recipes").mkdir()
    (root / "recipes" / "tiny.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "dvc.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "params.yaml").write_text(yaml.safe_dump({"recipes": {"tiny": {}}}))

    dvc(["repro"], root, env)
    first = read_json(root / "results/tiny.json")
    metrics = read_json(root / "runs/tiny/metrics.json")
    assert first["accuracy"] == metrics["test_accuracy"]
    again = dvc(["repro"], root, env)
    assert "didn't change, skipping" in again and "Running stage" not in again, again

    git(["add", "-A"], root, env)
    git(["commit", "-q", "-m", "first"], root, env)

    params = {"recipes": {"tiny": {"optim": {"lr": 0.05}, "train": {"seed": 1}}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    changed = dvc(["repro"], root, env)
    assert "Running stage 'train_tiny'" in changed and "Running stage 'eval_tiny'" in changed
    config = yaml.safe_load((root / "runs/tiny/config.yaml").read_text())
    assert config["optim"]["lr"] == 0.05
    second = read_json(root / "results/tiny.json")
    diff = json.loads(dvc(["metrics", "diff", "--json", "HEAD"], root, env))
    assert diff["results/tiny.json"]["accuracy"]["old"] == pytest.approx(first["accuracy"])
    assert diff["results/tiny.json"]["accuracy"]["new"] == pytest.approx(second["accuracy"])
    assert second["loss"] != first["loss"], "another learning rate and seed changed no figure"
