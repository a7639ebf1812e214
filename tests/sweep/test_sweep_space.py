"""The search-space file: each malformed entry is refused with its key named, before any
trial runs; the shipped spaces load against their recipes."""

from __future__ import annotations

import pytest
from sweep_helpers import RECIPE, write_yaml

from dlcc.cli import main
from dlcc.sweep.space import SpaceError, load_space, parse_space, with_params
from dlcc.training.config import config_from_dict, load_recipe, recipes_dir

SETTINGS = config_from_dict(RECIPE).to_dict()

GOOD = {
    "optim.lr": {"type": "float", "low": "1e-4", "high": 0.1, "log": True},
    "optim.name": {"type": "categorical", "choices": ["sgd", "adam"]},
    "model.options.hidden.0": {"type": "int", "low": 16, "high": 64, "step": 16},
    "model.options.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def test_a_good_space_parses_into_its_distributions():
    params = {param.key: param for param in parse_space(GOOD, SETTINGS)}
    assert params["optim.lr"].low == 1e-4  # YAML 1.1 reads 1e-4 as text: taken as a number
    assert params["optim.lr"].log is True
    assert params["optim.name"].choices == ("sgd", "adam")
    assert (params["model.options.hidden.0"].high, params["model.options.hidden.0"].step) == (
        64,
        16,
    )
    # a new argument of a free-form mapping (the model's constructor) is allowed
    assert "model.options.dropout" in params


def test_values_land_at_their_dotted_paths_and_the_recipe_is_not_changed():
    values = {"optim.lr": 0.003, "model.options.hidden.0": 48, "model.options.dropout": 0.25}
    settings = with_params(SETTINGS, values)
    assert settings["optim"]["lr"] == 0.003
    assert settings["model"]["options"] == {"hidden": [48], "dropout": 0.25}
    assert SETTINGS["model"]["options"] == {"hidden": [32]}


BAD = [
    ({"optim.lr": {"type": "floot", "low": 0.1, "high": 1}}, r"optim.lr: type must be one of"),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}, r"optim.lr: low must be below"),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 0.1}}, r"optim.lr: low must be below"),
    ({"optim.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, r"optim.lr: a log scale"),
    ({"optim.lr": {"type": "float", "low": 0.1}}, r"optim.lr: .*high is missing"),
    ({"optim.lr": {"type": "float", "low": "x", "high": 1}}, r"optim.lr: low: expected a finite"),
    ({"optim.lr": {"type": "float", "low": 0.1, "hihg": 1}}, r"optim.lr: unknown field 'hihg'"),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 1, "log": "yes"}}, r"optim.lr: log must"),
    ({"optim.name": {"type": "categorical", "choices": []}}, r"optim.name: choices must be a non"),
    ({"optim.name": {"type": "categorical"}}, r"optim.name: choices must be a non-empty"),
    ({"optim.name": {"type": "categorical", "choices": [[1]]}}, r"optim.name: each choice"),
    ({"optim.name": {"type": "categorical", "choices": ["a", "a"]}}, r"optim.name: choices must"),
    ({"optim.name": "adam"}, r"optim.name: expected a mapping"),
    ({"train.epochs": {"type": "int", "low": 1.5, "high": 3}}, r"train.epochs: low: type int"),
    ({"train.epochs": {"type": "int", "low": 1, "high": 9, "step": 0}}, r"train.epochs: step"),
    ({"optim.lrr": {"type": "float", "low": 0.1, "high": 1}}, r"optim.lrr: .*did you mean 'lr'"),
    ({"optimiser.lr": {"type": "float", "low": 0.1, "high": 1}}, r"optimiser.lr: the recipe has"),
    ({"model.options.hidden.3": {"type": "int", "low": 1, "high": 9}}, r"hidden.3: .*a list of 1"),
    ({"model.options.hidden": {"type": "int", "low": 1, "high": 9}}, r"options.hidden: holds a"),
    ({"optim": {"type": "float", "low": 0.1, "high": 1}}, r"optim: holds a mapping"),
    ({"optim.lr.x": {"type": "float", "low": 0.1, "high": 1}}, r"optim.lr.x: optim.lr is a value"),
    # the recipe's own type check, run at each extreme: train.epochs is an integer
    ({"train.epochs": {"type": "float", "low": 1, "high": 3}}, r"train.epochs: the recipe refuses"),
    ({"optim.name": {"type": "categorical", "choices": ["sgd", "lion"]}}, r"refuses the value"),
    ({}, r"expected a mapping of dotted recipe keys"),
    (["optim.lr"], r"expected a mapping of dotted recipe keys"),
]


@pytest.mark.parametrize(("space", "message"), BAD)
def test_a_malformed_entry_is_refused_naming_its_key(space, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(space, SETTINGS)


def test_the_cli_prints_the_error_with_the_key_and_runs_nothing(workdir, recipe, capsys):
    space = write_yaml(workdir / "space.yaml", {"optim.lr": {"type": "float", "low": 1, "high": 0}})
    status = main(["sweep", str(recipe), "--space", str(space), "--trials", "2", "--out", "s/x"])
    assert status == 2
    err = capsys.readouterr().err
    assert "dlcc: error:" in err and "optim.lr: low must be below high" in err
    assert "Traceback" not in err
    assert not (workdir / "s").exists()  # no study, no folder


def test_invalid_yaml_and_a_missing_file_are_errors(workdir):
    (workdir / "broken.yaml").write_text("optim.lr: {type: float, low: [\n")
    with pytest.raises(SpaceError, match="is not valid YAML"):
        load_space(workdir / "broken.yaml", SETTINGS)
    with pytest.raises(SpaceError, match="no such file"):
        load_space(workdir / "absent.yaml", SETTINGS)


@pytest.mark.parametrize(
    ("space", "recipe"),
    [("cifar10_mlp", "cifar10_mlp"), ("cifar10_mlp_smoke", "cifar10_mlp_smoke")],
)
def test_the_shipped_spaces_load_against_their_recipes(space, recipe):
    settings = load_recipe(recipe).to_dict()
    params = load_space(recipes_dir() / "spaces" / f"{space}.yaml", settings)
    keys = {param.key: param for param in params}
    assert keys["optim.lr"].log and keys["optim.lr"].type == "float"
    assert keys["optim.name"].type == "categorical"
    assert keys["model.options.hidden.0"].type == "int"  # integer widths
    assert load_recipe(recipe).model.name == "mlp"
