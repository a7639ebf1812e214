"""A small convolutional classifier: conv-BN-ReLU blocks, stride-2 down-sampling, global
average pooling, one linear layer.

    stem:     conv 3x3 (in -> widths[0]) -> BN -> ReLU                    (N, w0, H, W)
    stage 0:  blocks_per_stage - 1 more blocks at width w0                 (N, w0, H, W)
    stage i:  a stride-2 block (w[i-1] -> w[i]), then blocks_per_stage - 1 (N, wi, H/2^i, W/2^i)
    head:     global average pool -> Dropout -> Linear                     (N, num_classes)

Down-sampling by a strided conv, not max pooling, lets the network learn how to shrink.
With ``depthwise=True`` every 3x3 conv after the stem is depthwise-separable, as in
MobileNet (Howard et al. 2017): a 3x3 conv per channel, BN, ReLU, then a 1x1 conv that
mixes channels. That costs about 1/9 + 1/out_channels of the weights and multiply-adds.
The stem stays an ordinary conv: on 1 or 3 input channels there is nothing to save.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.models.common import (
    ModelError,
    check_images,
    dropout_probability,
    init_weights_,
    positive_int,
    positive_ints,
)


class ConvBNReLU(nn.Sequential):
    """conv (no bias: BN has one) -> BatchNorm -> ReLU. (N, C_in, H, W) -> (N, C_out, H/s, W/s)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ):
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (MobileNet v1).

    (N, C_in, H, W) -> (N, C_in, H/s, W/s) -> (N, C_out, H/s, W/s).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(
            ConvBNReLU(in_channels, in_channels, 3, stride=stride, groups=in_channels),
            ConvBNReLU(in_channels, out_channels, 1),
        )


class SmallCNN(nn.Module):
    """A small conv net for MNIST- and CIFAR-sized images (see the module docstring).

    Args:
        in_channels: channels of the input images (1 for MNIST, 3 for CIFAR).
        num_classes: number of output logits.
        widths: channels of each stage; each stage after the first halves H and W.
        blocks_per_stage: conv blocks per stage (the stem counts as stage 0's first).
        depthwise: make every 3x3 conv after the stem depthwise-separable.
        dropout: drop probability before the linear head.

    Input (N, in_channels, H, W); output (N, num_classes). Any H, W >= 1 works.
    Init: He normal (fan_out) for convs, Xavier uniform for the head, BN weight 1 bias 0.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks_per_stage: int = 1,
        depthwise: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.in_channels = positive_int(in_channels, "SmallCNN in_channels")
        num_classes = positive_int(num_classes, "SmallCNN num_classes")
        widths = positive_ints(widths, "SmallCNN widths")
        blocks_per_stage = positive_int(blocks_per_stage, "SmallCNN blocks_per_stage")
        dropout = dropout_probability(dropout, "SmallCNN dropout")
        if not isinstance(depthwise, bool):
            raise ModelError(f"SmallCNN depthwise: expected true or false, received {depthwise!r}.")

        def block(block_in: int, block_out: int, stride: int) -> nn.Module:
            if depthwise:
                return DepthwiseSeparable(block_in, block_out, stride)
            return ConvBNReLU(block_in, block_out, 3, stride)

        # BEGIN SOLUTION SmallCNN.__init__: the stem and the stages (see the module docstring)
        layers: list[nn.Module] = [ConvBNReLU(self.in_channels, widths[0], 3)]
        channels = widths[0]
        for stage, width in enumerate(widths):
            # stage 0 starts with the stem; later stages start with a stride-2 block
            first_block = 1 if stage == 0 else 0
            for index in range(first_block, blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(block(channels, width, stride))
                channels = width
        # END SOLUTION
        # BEGIN PROMPT
        # Build `layers`, the list of blocks in order: the stem ConvBNReLU(in_channels,
        # widths[0], 3), then for each stage its blocks_per_stage blocks (stage 0 counts the
        # stem as its first), made with block(in, out, stride); a stage after the first opens
        # with a stride-2 block. Set `channels` to the last block's output channels (the
        # head reads it).
        # END PROMPT
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)
        init_weights_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        check_images(x, self.in_channels, "SmallCNN")
        # BEGIN SOLUTION SmallCNN.forward: features, global average pool, dropout, linear head
        x = self.features(x)  # (N, widths[-1], H / 2^(stages-1), W / 2^(stages-1))
        x = self.pool(x).flatten(1)  # (N, widths[-1])
        return self.head(self.dropout(x))  # (N, num_classes)
        # END SOLUTION
        # BEGIN PROMPT
        # self.features, then self.pool (N, C, 1, 1), flattened to (N, C), then
        # self.dropout and self.head: (N, num_classes) logits.
        # END PROMPT
