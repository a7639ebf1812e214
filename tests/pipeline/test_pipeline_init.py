"""`dlcc pipeline init RECIPE...`: dvc.yaml and params.yaml for recipes (no dvc run here:
tests/course/a6/test_a6_pipeline.py runs what the stages make with a real dvc)."""

from __future__ import annotations

import shlex

import yaml

from dlcc.cli import main


def test_pipeline_init_writes_the_stages_and_keeps_existing_params(tmp_path, capsys):
    recipe = tmp_path / "configs" / "tiny.yaml"
    recipe.parent.mkdir()
    recipe.write_text("train: {epochs: 1}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text("recipes:\n  other: {train: {epochs: 3}}\nseed: 1\n")
    assert main(["pipeline", "init", str(recipe), "--dir", str(project)]) == 0
    document = yaml.safe_load((project / "dvc.yaml").read_text())
    train = document["stages"]["train_tiny"]
    assert shlex.split(train["cmd"]) == [
        "python", "-m", "dlcc", "train", "../configs/tiny.yaml", "--params",
        "params.yaml:recipes.tiny", "--out", "runs/tiny", "--no-track", "--no-progress",
    ]  # fmt: skip
    assert train["deps"] == ["../configs/tiny.yaml"] and train["outs"] == ["runs/tiny"]
    assert document["stages"]["eval_tiny"]["metrics"] == [{"results/tiny.json": {"cache": False}}]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params == {"recipes": {"other": {"train": {"epochs": 3}}, "tiny": {}}, "seed": 1}


def test_pipeline_init_keeps_an_existing_dvc_yaml(tmp_path, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert main(["pipeline", "init", "mnist_cnn_smoke", "--dir", str(tmp_path)]) == 2
    assert "exists: nothing is overwritten" in capsys.readouterr().err
    assert (tmp_path / "dvc.yaml").read_text() == "stages: {}\n"
    assert not (tmp_path / "params.yaml").exists()
    assert main(["pipeline", "init", "mnist_cnn_smoke", "--dir", str(tmp_path), "--force"]) == 0
    assert "train_mnist_cnn_smoke" in yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
