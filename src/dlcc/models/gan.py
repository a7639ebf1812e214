"""The course's GAN networks for small grey images (MNIST, Fashion-MNIST: 1 x 28 x 28).

    generator = GanGenerator((1, 28, 28), num_classes=10, conditional=True)
    images = generator(torch.randn(16, 64), labels)        # (16, 1, 28, 28) in [-1, 1]
    critic = GanDiscriminator((1, 28, 28), num_classes=10, conditional=True)
    scores = critic(images, labels)                        # (16,) logits / critic values

Generators map noise z (N, latent_dim) (and, when conditional, labels (N,) int64) to
images (N, C, H, W) in [-1, 1] (tanh). H and W must be divisible by 4: the image is built
at (H/4, W/4) and up-sampled twice.
- `GanGenerator`: linear -> BN -> ReLU -> linear -> reshape (width, H/4, W/4) -> two
  PixelShuffle up-samplings (conv to 4x the channels, then shuffle them into 2x2 pixels),
  each followed by BN -> ReLU -> conv -> tanh.
- `DCGANGenerator`: the DCGAN variant (Radford et al. 2016): linear -> reshape, then
  stride-2 transposed convolutions (kernel 4), BN and ReLU, conv -> tanh.
- Conditioning: the class enters the generator as a learnt embedding concatenated to z.

`GanDiscriminator` maps images (N, C, H, W) (and labels) to one score per image (N,):
two stride-2 convs, each normalised and followed by LeakyReLU(0.2), then a linear score.
`norm` is ``batch``, ``layer`` or ``none``. For WGAN-GP use ``layer`` or ``none``: batch
norm mixes the samples of a batch, so the gradient of one image's score depends on the
others and the per-sample gradient penalty no longer constrains the critic it is meant to
(Gulrajani et al. 2017, section 4). The conditional discriminator is a projection
discriminator (Miyato & Koyama 2018): score = linear(h) + <embed(y), h>, where h is the
pooled feature vector.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.models.common import ModelError, positive_int

NORMS = ("batch", "layer", "none")


def _check_shape(in_shape, model_name: str) -> tuple[int, int, int]:
    channels, height, width = (int(size) for size in in_shape)
    if height % 4 or width % 4:
        raise ModelError(
            f"{model_name}: image height and width must be divisible by 4 (the image is "
            f"built at a quarter size and up-sampled twice), received {height} x {width}; "
            "use 28 x 28 (MNIST) or 8 x 8 (digits)"
        )
    return channels, height, width


def _check_labels(labels, conditional: bool, num_classes: int, model_name: str):
    if not conditional:
        return
    if labels is None:
        raise ModelError(f"{model_name} is conditional: pass labels (N,) int64 with the input")
    if labels.dtype != torch.int64 or labels.ndim != 1:
        raise ModelError(
            f"{model_name}: expected labels (N,) int64, received {tuple(labels.shape)} "
            f"{labels.dtype}"
        )


class _Conditioner(nn.Module):
    """z (N, latent_dim), labels (N,) -> (N, latent_dim [+ embedding]): the generator's input."""

    def __init__(self, latent_dim: int, num_classes: int, conditional: bool, embedding: int):
        super().__init__()
        self.latent_dim, self.conditional = latent_dim, conditional
        self.embed = nn.Embedding(num_classes, embedding) if conditional else None
        self.out_features = latent_dim + (embedding if conditional else 0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ModelError(
                f"generator: expected noise (N, {self.latent_dim}), received {tuple(z.shape)}"
            )
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(labels)], dim=1)  # (N, latent_dim + embedding)


class GanGenerator(nn.Module):
    """z (N, latent_dim) [, labels (N,)] -> images (N, C, H, W) in [-1, 1], via PixelShuffle."""

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        latent_dim: int = 64,
        width: int = 64,
        hidden: int = 256,
        conditional: bool = False,
        embedding: int = 16,
    ):
        super().__init__()
        self.channels, height, width_px = _check_shape(in_shape, "GanGenerator")
        self.latent_dim = positive_int(latent_dim, "GanGenerator latent_dim")
        self.num_classes, self.conditional = int(num_classes), bool(conditional)
        self.base = (positive_int(width, "GanGenerator width"), height // 4, width_px // 4)
        self.condition = _Conditioner(latent_dim, num_classes, conditional, embedding)
        base_size = self.base[0] * self.base[1] * self.base[2]
        self.project = nn.Sequential(
            nn.Linear(self.condition.out_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, base_size),
        )

        def up(channels_in: int, channels_out: int) -> nn.Sequential:
            # conv to 4x the channels, then PixelShuffle turns each 4 into a 2x2 block
            return nn.Sequential(
                nn.BatchNorm2d(channels_in),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels_in, channels_out * 4, 3, padding=1),
                nn.PixelShuffle(2),
            )

        self.body = nn.Sequential(
            up(width, width),  # (N, width, H/2, W/2)
            up(width, width // 2),  # (N, width/2, H, W)
            nn.BatchNorm2d(width // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, self.channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(labels, self.conditional, self.num_classes, "GanGenerator")
        h = self.project(self.condition(z, labels))  # (N, width * H/4 * W/4)
        return self.body(h.view(len(z), *self.base))  # (N, C, H, W)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) [, labels (N,)] -> images (N, C, H, W) in [-1, 1], via
    stride-2 transposed convolutions (DCGAN)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        latent_dim: int = 64,
        width: int = 128,
        conditional: bool = False,
        embedding: int = 16,
    ):
        super().__init__()
        self.channels, height, width_px = _check_shape(in_shape, "DCGANGenerator")
        self.latent_dim = positive_int(latent_dim, "DCGANGenerator latent_dim")
        self.num_classes, self.conditional = int(num_classes), bool(conditional)
        self.base = (positive_int(width, "DCGANGenerator width"), height // 4, width_px // 4)
        self.condition = _Conditioner(latent_dim, num_classes, conditional, embedding)
        self.project = nn.Linear(self.condition.out_features, width * self.base[1] * self.base[2])
        self.body = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),  # (N, w/2, H/2, W/2)
            nn.BatchNorm2d(width // 2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width // 2, width // 4, 4, stride=2, padding=1),  # (N, w/4, H, W)
            nn.BatchNorm2d(width // 4),
            nn.ReLU(inplace=True),
            nn.Conv2d(width // 4, self.channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(labels, self.conditional, self.num_classes, "DCGANGenerator")
        h = self.project(self.condition(z, labels))
        return self.body(h.view(len(z), *self.base))  # (N, C, H, W)


def _norm(kind: str, channels: int, size: tuple[int, int]) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per sample, over (C, H, W): safe for the gradient penalty
        return nn.LayerNorm([channels, *size])
    return nn.Identity()


class GanDiscriminator(nn.Module):
    """images (N, C, H, W) [, labels (N,)] -> scores (N,): logits (GAN) or critic values."""

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        width: int = 64,
        norm: str = "batch",
        conditional: bool = False,
    ):
        super().__init__()
        channels, height, width_px = _check_shape(in_shape, "GanDiscriminator")
        if norm not in NORMS:
            raise ModelError(
                f"GanDiscriminator: norm must be one of {', '.join(NORMS)}, received {norm!r}"
            )
        self.in_channels, self.num_classes = channels, int(num_classes)
        self.conditional = bool(conditional)
        width = positive_int(width, "GanDiscriminator width")
        quarter = (height // 4, width_px // 4)
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),  # (N, width, H/2, W/2)
            nn.LeakyReLU(0.2, inplace=True),  # no norm on the first layer (DCGAN's advice)
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1),  # (N, 2 width, H/4, W/4)
            _norm(norm, width * 2, quarter),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.feature_size = width * 2 * quarter[0] * quarter[1]
        self.score = nn.Linear(self.feature_size, 1)
        self.embed = None
        if conditional:
            # at the scale of the score layer's own init, U(+-1/sqrt(F)): Embedding's N(0, 1)
            # would make <embed(y), h> sqrt(F) times larger than linear(h) at the start
            self.embed = nn.Embedding(num_classes, self.feature_size)
            bound = self.feature_size**-0.5
            nn.init.uniform_(self.embed.weight, -bound, bound)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(labels, self.conditional, self.num_classes, "GanDiscriminator")
        h = self.features(images).flatten(1)  # (N, feature_size)
        score = self.score(h).squeeze(1)  # (N,)
        if self.embed is not None:  # projection: + <embed(y), h>
            score = score + (self.embed(labels) * h).sum(dim=1)
        return score


# The GAN networks by name, as a recipe names them (model.name: the generator;
# task.options.discriminator.name: the discriminator). They are kept out of
# `dlcc.models.MODELS`, whose entries map one input batch to outputs (and which `dlcc
# export` exports, every one): a generator's input is noise, and conditional ones take
# labels as a second input.
GENERATORS = {"gan_generator": GanGenerator, "dcgan_generator": DCGANGenerator}
DISCRIMINATORS = {"gan_discriminator": GanDiscriminator}


def build_gan_model(
    name: str, in_shape: tuple[int, ...], num_classes: int, role: str = "generator", **options
) -> nn.Module:
    """GAN network `name` (a `role`: generator or discriminator) for images of `in_shape`
    (C, H, W) and `num_classes` classes; ModelError naming the choices otherwise."""
    import inspect

    from dlcc.suggest import did_you_mean

    table = GENERATORS if role == "generator" else DISCRIMINATORS
    if name not in table:
        raise ModelError(
            f"unknown GAN {role} {name!r}{did_you_mean(str(name), table)}; "
            f"expected one of {', '.join(sorted(table))}"
        )
    valid = [
        key
        for key in inspect.signature(table[name]).parameters
        if key not in ("in_shape", "num_classes")
    ]
    for key in options:
        if key not in valid:
            raise ModelError(
                f"{name}: unknown option {key!r}{did_you_mean(key, valid)}; "
                f"valid options: {', '.join(valid)}"
            )
    shape = tuple(int(size) for size in in_shape)
    if len(shape) != 3:
        raise ModelError(f"{name}: expected in_shape (C, H, W), received {in_shape!r}")
    return table[name](in_shape=shape, num_classes=num_classes, **options)


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "NORMS",
    "DCGANGenerator",
    "GanDiscriminator",
    "GanGenerator",
    "build_gan_model",
]
