"""Pre-activation residual networks (He, Zhang, Ren, Sun 2016, "Identity Mappings in Deep
Residual Networks"), sized for 28x28 and 32x32 images.

A pre-activation block normalises and activates *before* each conv:

    x ─┬─ BN ─ ReLU ─┬─ conv 3x3 (stride s) ─ BN ─ ReLU ─ conv 3x3 ─┐
       │             └─ conv 1x1 (stride s), only when shape changes ┤
       └────────────── identity, when the shape stays ───────────────+── out

so the identity path from input to output carries no ReLU or BN at all, and the signal
and its gradient pass through a deep stack unchanged. That is what made 1000-layer
networks train in that paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.models.common import (
    ModelError,
    check_images,
    init_weights_,
    positive_int,
    positive_ints,
)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice, plus a shortcut. (N, C_in, H, W) -> (N, C_out, H/s, W/s).

    The shortcut is the identity when C_in == C_out and stride == 1, else a 1x1 conv with
    the block's stride (a "projection", option B of He et al. 2015) applied to the
    pre-activated input, as in the authors' code.

    The strided 1x1 conv is written as "keep every s-th pixel, then a 1x1 conv": the same
    numbers, but it avoids a oneDNN bug in PyTorch's CPU backward for a strided 1x1 conv
    on channels_last input with few input channels (e.g. 8), which corrupts the heap or
    returns wrong weight gradients (oneDNN issue #6035, "1x1 convolution backward_weights
    writes past the rtus workspace").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))  # (N, C_in, H, W)
        if self.shortcut is None:
            shortcut = x
        else:
            # = conv 1x1 with stride s (see the class docstring for why it is spelt so)
            subsampled = out[:, :, :: self.stride, :: self.stride]  # (N, C_in, H/s, W/s)
            shortcut = self.shortcut(subsampled)  # (N, C_out, H/s, W/s)
        out = self.conv1(out)  # (N, C_out, H/s, W/s)
        out = self.conv2(F.relu(self.bn2(out)))  # (N, C_out, H/s, W/s)
        return out + shortcut


class PreActResNet(nn.Module):
    """A pre-activation ResNet for small images.

        stem:    conv 3x3 (in -> widths[0])                     (N, w0, H, W)
        stage i: blocks[i] PreActBlocks at widths[i]; the first
                 of each stage after stage 0 has stride 2       (N, wi, H/2^i, W/2^i)
        head:    BN -> ReLU -> global average pool -> Linear    (N, num_classes)

    The final BN-ReLU is needed because every block ends in a bare conv. There is no
    7x7 stem and no max pool: on 28x28 or 32x32 images they would throw away too much.
    The defaults are PreActResNet-18 (about 11.2M parameters on CIFAR-10).

    Args:
        in_channels: channels of the input images.
        num_classes: number of output logits.
        widths: channels of each stage.
        blocks: residual blocks in each stage; as many entries as ``widths``.

    Input (N, in_channels, H, W); output (N, num_classes).
    Init: He normal (fan_out) for convs, Xavier uniform for the head, BN weight 1 bias 0.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
    ):
        super().__init__()
        self.in_channels = positive_int(in_channels, "PreActResNet in_channels")
        num_classes = positive_int(num_classes, "PreActResNet num_classes")
        widths = positive_ints(widths, "PreActResNet widths")
        blocks = positive_ints(blocks, "PreActResNet blocks")
        if len(widths) != len(blocks):
            raise ModelError(
                f"PreActResNet: expected one entry of blocks per stage, received "
                f"widths={list(widths)} ({len(widths)} stages) and blocks={list(blocks)}. "
                "Give both lists the same length."
            )

        self.stem = nn.Conv2d(self.in_channels, widths[0], 3, padding=1, bias=False)
        layers = []
        channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(PreActBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels, num_classes)
        init_weights_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        check_images(x, self.in_channels, type(self).__name__)
        x = self.stem(x)  # (N, widths[0], H, W)
        x = self.stages(x)  # (N, widths[-1], H / 2^(stages-1), W / 2^(stages-1))
        x = F.relu(self.bn(x))
        x = x.mean(dim=(2, 3))  # (N, widths[-1]) global average pool
        return self.head(x)  # (N, num_classes)


def resnet20(num_classes: int = 10, in_channels: int = 3) -> PreActResNet:
    """The CIFAR-10 ResNet-20 of He et al. 2015 (section 4.2), built from pre-activation
    blocks (He et al. 2016) with 1x1 projection shortcuts.

    3 stages of 16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps, n = 3 blocks each:
    6n + 2 = 20 weighted layers (the stem, 18 convs in blocks, the linear head; the two
    1x1 shortcuts are not counted, as in the paper). About 0.27M parameters: 272,282
    for CIFAR-10, where the paper's zero-padding shortcuts (option A) give 0.27M too.

    Pre-activation rather than the original post-activation block: the 2016 paper finds it
    trains as well or better at the depths it reports (e.g. 6.37% vs 6.61% error for
    ResNet-110 on CIFAR-10), and it shares its code with `PreActResNet`.
    """
    return PreActResNet(in_channels, num_classes, widths=(16, 32, 64), blocks=(3, 3, 3))
