"""The shipped GAN recipes validate and build their networks (without training them)."""

from __future__ import annotations

import pytest
import torch

from dlcc.gan import trainer
from dlcc.models.gan import GanDiscriminator
from dlcc.training.config import load_recipe, recipe_names

GAN_RECIPES = sorted(name for name in recipe_names() if name.startswith("gan_"))


def test_the_gan_recipes_are_shipped():
    assert GAN_RECIPES == ["gan_fashion", "gan_mnist", "gan_smoke", "gan_wgan_gp_mnist"]


@pytest.mark.parametrize("name", GAN_RECIPES)
def test_a_gan_recipe_validates_and_builds_its_networks(name):
    config = load_recipe(name)
    options = trainer.gan_options(config)
    assert config.task.name == "gan" and config.optim.betas[0] == 0.5
    shape = (1, 8, 8) if config.data.dataset == "digits" else (1, 28, 28)
    nets = trainer.build_nets(config, options, shape, 10, torch.device("cpu"))
    assert options.conditional and nets.generator.conditional and nets.discriminator.conditional
    z = torch.randn(2, nets.latent_dim)
    labels = torch.tensor([0, 9])
    assert nets.ema(z, labels).shape == (2, *shape)
    if options.loss == "wgan_gp":  # the per-sample penalty needs a critic without batch norm
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nets.discriminator.modules())
    assert isinstance(nets.discriminator, GanDiscriminator)
