"""The headline pipeline (dvc.yaml at the root) parses under the real dvc, and every
stage's command names recipes, scripts and params keys that exist. Nothing is run."""

from __future__ import annotations

import re
import shlex

import yaml
from dvc_helpers import REPO, dvc_env, need_dvc, run

from dlcc.training.config import load_recipe, read_params


def _stages(tmp_path) -> dict[str, dict]:
    """`dvc` resolves the templates (foreach, ${...}); read back through its own API."""
    need_dvc()
    script = (
        "import json, dvc.repo\n"
        "repo = dvc.repo.Repo('.')\n"
        "print(json.dumps({s.addressing: {'cmd': s.cmd, 'deps': [d.def_path for d in s.deps],"
        " 'params': [k for p in s.params for k in p.params]}"
        " for s in repo.index.stages if s.path_in_repo == 'dvc.yaml'}))\n"
    )
    import json
    import sys

    output = run([sys.executable, "-c", script], REPO, dvc_env(tmp_path, REPO / "src"))
    return json.loads(output.strip().splitlines()[-1])


def test_root_pipeline_parses_and_names_what_exists(tmp_path):
    stages = _stages(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert {"verify@mnist", "numpy@cnn_mnist", "train@mnist_cnn", "isbi_eval", "plots"} <= set(
        stages
    )
    recipes_seen = set()
    for name, stage in stages.items():
        words = shlex.split(stage["cmd"].replace(">", " > "))
        for index, word in enumerate(words):
            if word.endswith(".py"):
                assert (REPO / word).is_file(), f"{name}: no script {word}"
            if word == "train" and words[index - 1] == "dlcc":
                recipe = words[index + 1]
                assert (REPO / "recipes" / f"{recipe}.yaml").is_file(), f"{name}: {recipe}"
                spec = words[words.index("--params") + 1]
                settings, source = read_params(str(REPO / spec))
                load_recipe(recipe, settings=settings, settings_source=source)  # validates
                recipes_seen.add(recipe)
        for dep in stage["deps"]:
            if not dep.startswith(("data/", "runs/", "results/")):  # made by the pipeline
                assert (REPO / dep).exists(), f"{name}: dependency {dep} does not exist"
        for key in stage["params"]:
            value = params
            for part in key.split("."):
                assert part in value, f"{name}: params.yaml has no {key}"
                value = value[part]
    assert recipes_seen == set(params["recipes"])
    # Every training stage keeps MLflow off (DESIGN.md 8: the store is no stage's output).
    for name, stage in stages.items():
        if re.search(r"dlcc (numpy )?train", stage["cmd"]):
            assert "--no-track" in stage["cmd"], name


def test_root_pipeline_dag_and_status(tmp_path):
    dvc = need_dvc()
    env = dvc_env(tmp_path, REPO / "src")
    assert "train@mnist_cnn" in run([dvc, "dag", "--md"], REPO, env)
    run([dvc, "status"], REPO, env)  # parses; says what is out of date
