"""The GAN networks: shapes, ranges, conditioning, the projection, and clear errors."""

from __future__ import annotations

import pytest
import torch

from dlcc.models.common import ModelError
from dlcc.models.gan import DCGANGenerator, GanDiscriminator, GanGenerator, build_gan_model


@pytest.mark.parametrize("generator_class", [GanGenerator, DCGANGenerator])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 12, 16)])
@pytest.mark.parametrize("conditional", [False, True])
def test_generators_make_images_of_the_shape_in_tanh_range(generator_class, shape, conditional):
    torch.manual_seed(0)
    generator = generator_class(shape, num_classes=10, latent_dim=8, width=16,
                                conditional=conditional)  # fmt: skip
    labels = torch.tensor([0, 3, 9]) if conditional else None
    images = generator(torch.randn(3, 8) * 50, labels)  # large noise: saturates the tanh
    assert images.shape == (3, *shape)
    assert images.abs().max() <= 1.0
    critic = GanDiscriminator(shape, num_classes=10, width=8, conditional=conditional)
    assert critic(images, labels).shape == (3,)


def test_the_generator_up_samples_with_pixel_shuffle_and_the_dcgan_with_transposed_convs():
    modules = [type(m) for m in GanGenerator((1, 28, 28)).modules()]
    assert modules.count(torch.nn.PixelShuffle) == 2 and torch.nn.Tanh in modules
    assert torch.nn.BatchNorm1d in modules  # linear -> BN -> ReLU -> linear
    dcgan = [type(m) for m in DCGANGenerator((1, 28, 28)).modules()]
    assert dcgan.count(torch.nn.ConvTranspose2d) == 2


def test_a_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    generator = GanGenerator((1, 8, 8), latent_dim=4, width=8, conditional=True).eval()
    z = torch.randn(1, 4).repeat(2, 1)
    images = generator(z, torch.tensor([1, 2]))
    assert not torch.allclose(images[0], images[1])


def test_the_projection_discriminator_adds_the_inner_product_of_class_embedding_and_features():
    torch.manual_seed(0)
    critic = GanDiscriminator((1, 8, 8), num_classes=4, width=4, norm="none", conditional=True)
    images, labels = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 1])
    h = critic.features(images).flatten(1)
    expected = critic.score(h).squeeze(1) + (critic.embed.weight[labels] * h).sum(1)
    torch.testing.assert_close(critic(images, labels), expected)


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_critics_without_batch_norm_score_each_sample_on_its_own(norm):
    # what the per-sample gradient penalty needs: the batch does not change a sample's score
    torch.manual_seed(0)
    critic = GanDiscriminator((1, 8, 8), width=4, norm=norm).train()
    images = torch.randn(6, 1, 8, 8)
    together = critic(images)
    alone = torch.stack([critic(images[i : i + 1])[0] for i in range(6)])
    torch.testing.assert_close(together, alone)


def test_a_batch_norm_critic_mixes_the_batch():
    torch.manual_seed(0)
    critic = GanDiscriminator((1, 8, 8), width=4, norm="batch").train()
    images = torch.randn(6, 1, 8, 8)
    assert not torch.allclose(critic(images)[:3], critic(images[:3]))


def test_build_gan_model_by_name_and_its_errors_are_one_line():
    model = build_gan_model("dcgan_generator", (1, 28, 28), 10, latent_dim=12)
    assert model(torch.randn(2, 12)).shape == (2, 1, 28, 28)
    with pytest.raises(ModelError, match=r"unknown GAN generator 'gan_generatr'.*gan_generator"):
        build_gan_model("gan_generatr", (1, 28, 28), 10)
    with pytest.raises(ModelError, match=r"unknown option 'latent'.*latent_dim"):
        build_gan_model("gan_generator", (1, 28, 28), 10, latent=3)
    with pytest.raises(ModelError, match=r"divisible by 4.*30 x 30"):
        build_gan_model("gan_discriminator", (1, 30, 30), 10, role="discriminator")
    with pytest.raises(ModelError, match="norm must be one of batch, layer, none"):
        GanDiscriminator(norm="spectral")
    with pytest.raises(ModelError, match="is conditional: pass labels"):
        GanGenerator((1, 8, 8), conditional=True)(torch.randn(2, 64))
    with pytest.raises(ModelError, match=r"expected noise \(N, 64\)"):
        GanGenerator((1, 8, 8))(torch.randn(2, 5))
