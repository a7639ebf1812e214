"""Helpers shared by the Assignment 3 graded tests (imported by name: this folder is on
sys.path). Nothing here calls the reference's solution regions: the oracles are written in
the tests, functionally (F.conv2d, F.batch_norm, F.interpolate, torch.cat), from the weights
of the learner's own modules read back as data.

When graded, the learner's U-Net and losses run in a process of its own (`dlcc.course.remote`)
and autograd cannot span two processes: the modules, the backward pass of the Dice loss and
the short training run are made there by the helpers marked `learner_side`, and what the
tests check comes back as data (a state_dict, outputs, a gradient, predicted masks). Under
plain pytest the same helpers run in place.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.course.checks import check_close, randn  # noqa: F401  (the tests import them from here)
from dlcc.course.remote import connected, learner_side


def class_indices(shape: tuple[int, ...], classes: int, seed: int = 0) -> torch.Tensor:
    """(N, 1, H, W) float64 class indices in 0..classes-1, from `seed` (the losses' targets)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=generator).to(torch.float64)


def randomised_state(state: dict, seed: int) -> dict:
    """`state` (a module's state_dict, as data) with every float tensor redrawn, so that an
    evaluation-mode BatchNorm is far from the identity: weights and biases normal,
    running means normal, running variances in [0.5, 1.5]. Integer buffers are kept."""
    generator = torch.Generator().manual_seed(seed)
    redrawn = {}
    for name, value in state.items():
        if not value.is_floating_point():
            redrawn[name] = value.clone()
        elif name.endswith("running_var"):
            redrawn[name] = 0.5 + torch.rand(value.shape, generator=generator, dtype=value.dtype)
        else:
            scale = 0.5 if name.endswith(("weight", "bias")) else 1.0
            redrawn[name] = scale * torch.randn(value.shape, generator=generator, dtype=value.dtype)
    return redrawn


# ---- the learner's process -----------------------------------------------------------------
@learner_side
def use_torch_threads(count: int) -> int:
    """Run PyTorch on `count` threads (in the learner's process when graded); the old count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous


def on_one_thread_there() -> None:
    """When graded, the learner's process runs PyTorch on one thread too."""
    if connected():
        use_torch_threads(1)


@learner_side
def made(kind: str, *args, seed: int = 0, **kwargs) -> nn.Module:
    """The learner's ConvBlock, Up or UNet (`kind`) of dlcc.models.unet, float64, made after
    ``torch.manual_seed(seed)``: a module in the learner's process."""
    from dlcc.models import unet

    torch.manual_seed(seed)
    return getattr(unet, kind)(*args, **kwargs).double()


@learner_side
def state_of(model: nn.Module) -> dict:
    """A copy of the (learner's) module's state_dict, as data."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


@learner_side
def load_state(model: nn.Module, state: dict) -> None:
    """Load `state` into the (learner's) module, in place."""
    model.load_state_dict(state)


@learner_side
def outputs_of(model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """model(*inputs) in evaluation mode, without gradients."""
    model.eval()
    with torch.no_grad():
        return model(*inputs)


@learner_side
def without_block(up: nn.Module) -> nn.Module:
    """The (learner's) Up with its ConvBlock replaced by the identity, so that its output is
    the concatenation itself: Up.forward is graded without ConvBlock.forward."""
    up.block = nn.Identity()
    return up


# ---- stand-in parts for UNet.forward: not the answers, but shaped like them -------------------
def stand_in_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A stand-in for ConvBlock.forward with the block's own weights: conv1, tanh, conv2
    (no BatchNorm): (N, C_in, H, W) -> (N, C_out, H, W)."""
    return block.conv2(torch.tanh(block.conv1(x)))


def stand_in_up(up: nn.Module, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """A stand-in for Up.forward with the module's own weights: the up-sampled x first,
    then half the skip, through the (stand-in) block."""
    return up.block(torch.cat([up.up(x), 0.5 * skip], dim=1))


@learner_side
def with_stand_in_parts(model: nn.Module) -> nn.Module:
    """The (learner's) UNet with every ConvBlock and Up running the stand-ins above, so that
    UNet.forward is graded on its own."""
    from dlcc.models.unet import ConvBlock, Up

    for module in model.modules():
        if isinstance(module, ConvBlock):
            module.forward = functools.partial(stand_in_block, module)
        elif isinstance(module, Up):
            module.forward = functools.partial(stand_in_up, module)
    return model


# ---- the Dice loss on the learner's side ---------------------------------------------------
@learner_side
def dice_loss_and_gradient(logits: torch.Tensor, targets: torch.Tensor, **options) -> tuple:
    """(the learner's soft_dice_loss(logits, targets, **options), d loss / d logits), as data:
    the backward pass runs where the loss was computed."""
    from dlcc.segmentation.losses import soft_dice_loss

    logits = logits.detach().clone().requires_grad_(True)
    loss = soft_dice_loss(logits, targets, **options)
    loss.backward()
    return loss.detach(), logits.grad


# ---- a tiny training run ---------------------------------------------------------------------
def discs(count: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (count, 1, size, size) float32, masks (count, 1, size, size) float32 0/1):
    one or two bright discs of random centre and radius on a noisy dark background."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.arange(size, dtype=torch.float32).view(size, 1)
    columns = torch.arange(size, dtype=torch.float32).view(1, size)
    masks = torch.zeros(count, 1, size, size)
    for index in range(count):
        for _ in range(1 + index % 2):
            centre = 6 + (size - 12) * torch.rand(2, generator=generator)
            radius = 3 + 4 * float(torch.rand(1, generator=generator))
            inside = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2
            masks[index, 0][inside] = 1.0
    noise = 0.15 * torch.randn(count, 1, size, size, generator=generator)
    return 0.2 + 0.6 * masks + noise, masks


@learner_side
def overfit_discs(images: torch.Tensor, masks: torch.Tensor, steps: int, lr: float) -> dict:
    """The learner's UNet(1, 1, depth=2, width=4) (seed 0) after `steps` Adam steps on the one
    batch, with the learner's Dice loss plus the package's cross-entropy: its losses (in
    training mode), its predicted masks (logit > 0, evaluation mode) as int64 data, and the
    trained state_dict, so the test can check that a U-Net made those masks."""
    from dlcc.models.unet import UNet
    from dlcc.segmentation.losses import cross_entropy_loss, soft_dice_loss

    torch.manual_seed(0)
    model = UNet(1, 1, depth=2, width=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        logits = model(images)
        loss = soft_dice_loss(logits, masks) + cross_entropy_loss(logits, masks)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = (model(images) > 0).to(torch.int64)  # (N, 1, H, W)
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    return {"losses": losses, "predicted": predicted, "state": state}


def plain_conv(x: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
    """A stride-1 convolution padded to keep the size (3x3: 1 pixel; 1x1: none)."""
    return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)
