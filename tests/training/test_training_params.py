"""`dlcc train --params FILE:KEY`: a params.yaml mapping reaches the recipe, checked like --set;
`dlcc eval --json FILE` writes there and leaves the run directory alone."""

from __future__ import annotations

import json

import pytest
import yaml

from dlcc.cli import main
from dlcc.training.config import ConfigError, load_recipe, read_params


def _params(tmp_path, document):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_params_mapping_overrides_the_recipe_then_set_wins(tmp_path):
    path = _params(tmp_path, {"recipes": {"r": {"optim": {"lr": 0.01}, "train": {"epochs": 3}}}})
    settings, source = read_params(f"{path}:recipes.r")
    config = load_recipe("mnist_cnn_smoke", ["train.epochs=4"], settings, source)
    plain = load_recipe("mnist_cnn_smoke")
    assert (config.optim.lr, config.train.epochs) == (0.01, 4)
    assert config.model == plain.model and plain.optim.lr == 0.03
    # A mapping value replaces the recipe's mapping, as --set does.
    settings = {"model": {"options": {"widths": [8, 16]}}}
    config = load_recipe("mnist_cnn_smoke", settings=settings)
    assert config.model.options == {"widths": [8, 16]}


@pytest.mark.parametrize(
    ("document", "key", "message"),
    [
        ({"r": {"optim": {"lrr": 0.1}}}, "r", "did you mean 'lr'"),
        ({"r": {"optimizer": {"lr": 0.1}}}, "r", "unknown key 'optimizer'"),
        ({"r": {"optim": {"lr": "fast"}}}, "r", "expected a number"),
        ({"r": {"optim": 3}}, "r", "expected a mapping of its keys"),
        ({"r": [1]}, "r", "expected a mapping of recipe sections"),
        ({"r": {}}, "s", "no key 's'"),
    ],
)
def test_bad_params_are_refused_in_one_line(tmp_path, document, key, message):
    path = _params(tmp_path, document)
    with pytest.raises(ConfigError, match=message):
        settings, source = read_params(f"{path}:{key}")
        load_recipe("mnist_cnn_smoke", settings=settings, settings_source=source)


def test_params_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match="expected FILE:KEY"):
        read_params("params.yaml")
    with pytest.raises(ConfigError, match="no file"):
        read_params(f"{tmp_path}/missing.yaml:a")
    empty = _params(tmp_path, {"r": None})
    assert read_params(f"{empty}:r")[0] == {}


def test_train_params_and_eval_json_through_the_cli(tmp_path, capsys):
    path = _params(tmp_path, {"recipes": {"m": {"train": {"epochs": 1}, "optim": {"lr": 0.01}}}})
    run_dir = tmp_path / "run"
    argv = ["train", "mnist_cnn_smoke", "--out", str(run_dir), "--no-progress", "--no-track"]
    assert main([*argv, "--params", f"{path}:recipes.m"]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (config["optim"]["lr"], config["train"]["epochs"]) == (0.01, 1)
    before = sorted(p.name for p in run_dir.iterdir())
    out = tmp_path / "results/eval.json"
    assert main(["eval", str(run_dir), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written there
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert figures["accuracy"] == pytest.approx(metrics["test_accuracy"])
