"""Recipes: every shipped recipe validates; typos and wrong types are refused in one line."""

from __future__ import annotations

import pytest

from dlcc.training.config import (
    ConfigError,
    apply_override,
    config_from_dict,
    load_recipe,
    recipe_names,
)


def test_every_shipped_recipe_has_a_smoke_variant_and_validates():
    names = recipe_names()
    for required in ("mnist_cnn", "cifar10_small_cnn", "cifar10_resnet"):
        assert required in names and f"{required}_smoke" in names
    for name in names:
        config = load_recipe(name)
        assert config.train.epochs >= 1


def test_smoke_recipes_use_the_embedded_digits_so_tests_need_no_download():
    for name in recipe_names():
        if name.endswith("_smoke"):
            # or the user's own files, which the tests make (segmentation_smoke), or the ISBI
            # images, which have no download: their tests skip without the shared folder; or
            # the generated copy text (the language models'), or synthetic ECG alone
            recipe = load_recipe(name)
            dataset = recipe.data.dataset
            assert dataset in ("digits", "image_masks", "isbi2012_em", "copy", "ecg_beats"), name
            if dataset == "ecg_beats":  # generated here: MIT-BIH record 100 left out
                assert recipe.data.options.get("use_mitdb") is False, name


def test_an_unknown_key_names_the_closest_valid_one(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'epochz'.*did you mean 'epochs'"):
        load_recipe(str(path))


def test_an_unknown_section_is_refused():
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*'train'"):
        config_from_dict({"trian": {"epochs": 1}})


def test_set_overrides_are_type_checked():
    config = load_recipe("mnist_cnn_smoke")
    apply_override(config, "train.epochs=3")
    apply_override(config, "optim.lr=1e-2")
    apply_override(config, "train.grad_clip=null")
    apply_override(config, "data.augment=[hflip]")
    assert (config.train.epochs, config.optim.lr, config.data.augment) == (3, 0.01, ["hflip"])
    with pytest.raises(ConfigError, match=r"train.epochs=three: expected an integer, got str"):
        apply_override(config, "train.epochs=three")
    with pytest.raises(ConfigError, match=r"expected true/false"):
        apply_override(config, "train.deterministic=3")
    with pytest.raises(ConfigError, match=r"unknown key 'lrr'.*did you mean 'lr'"):
        apply_override(config, "optim.lrr=0.1")
    with pytest.raises(ConfigError, match=r"expected section.key=value"):
        apply_override(config, "train.epochs")
    with pytest.raises(ConfigError, match=r"is a section"):
        apply_override(config, "train=3")


def test_an_integer_is_accepted_where_a_number_is_expected():
    config = config_from_dict({"optim": {"lr": 1}})
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)


def test_values_outside_their_choices_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  name: lbfgs\n")
    with pytest.raises(ConfigError, match=r"optim.name: expected one of sgd, adam, adamw"):
        load_recipe(str(path))
    path.write_text("train:\n  epochs: 0\n")
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer >= 1"):
        load_recipe(str(path))


def test_an_unknown_recipe_name_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"no recipe 'mnist_cn' \(did you mean 'mnist_cnn'\?\)"):
        load_recipe("mnist_cn")


def test_invalid_yaml_is_one_clear_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML"):
        load_recipe(str(path))
