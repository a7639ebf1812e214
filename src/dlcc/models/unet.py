"""U-Net (Ronneberger, Fischer, Brox 2015): an encoder-decoder with skip connections, for
per-pixel prediction (segmentation masks, detection heatmaps).

    x ── block(w) ─────────────────────────────────────── cat ─ block(w) ── 1x1 ── logits
          │ pool                                          │ up
          └─ block(2w) ─────────────────────── cat ─ block(2w)
                │ pool                          │ up
                └─ ...  block(w * 2**depth) ────┘        (the bottleneck)

The encoder halves the height and width `depth` times and doubles the channels; the
decoder up-samples back and concatenates the encoder's map of the same size (the skip),
so the fine detail the pooling threw away returns for the last layers. Unlike the paper,
the 3x3 convolutions are padded, so a level's output has its input's size; an input of
any size is padded (by reflection) to a multiple of 2**depth and the output cropped back,
so (N, C, H, W) -> (N, num_classes, H, W) for every H and W.

Receptive field: each level adds two 3x3 convs at its scale; with `depth` = 4 the field
is 140 pixels wide at the bottleneck's centre, which is enough to see a whole EM cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.models.common import ModelError, check_images, init_weights_, positive_int

UPSAMPLING = ("bilinear", "transpose")


class ConvBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers: (N, C_in, H, W) -> (N, C_out, H, W).

    With ``residual``, the input is added back after the second BN (through a 1x1 conv
    when C_in != C_out), before the last ReLU: a ResNet basic block at one scale.
    """

    def __init__(self, in_channels: int, out_channels: int, residual: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.residual = residual
        self.shortcut = None
        if residual and in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION unet_conv_block: conv-BN-ReLU, conv-BN, (+ shortcut), ReLU
        out = F.relu(self.bn1(self.conv1(x)))  # (N, C_out, H, W)
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)
        # END SOLUTION
        # BEGIN PROMPT
        # conv1 -> bn1 -> ReLU, then conv2 -> bn2. When self.residual, add the input
        # (through self.shortcut when it is not None) before the final ReLU.
        # Shapes: (N, C_in, H, W) -> (N, C_out, H, W).
        # END PROMPT


class Down(nn.Module):
    """2x2 max-pool, then a ConvBlock: (N, C_in, H, W) -> (N, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, residual: bool = False):
        super().__init__()
        self.block = ConvBlock(in_channels, out_channels, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.max_pool2d(x, 2))


class Up(nn.Module):
    """Up-sample 2x, halve the channels, concatenate the skip, then a ConvBlock.

    (N, C_in, H, W) and a skip (N, C_in / 2, 2H, 2W) -> (N, C_out, 2H, 2W). "bilinear"
    interpolates then applies a 1x1 conv (no checkerboard artefacts); "transpose" learns
    the up-sampling with a 2x2 transposed conv of stride 2, as in the paper.
    """

    def __init__(
        self, in_channels: int, out_channels: int, upsampling: str, residual: bool = False
    ):
        super().__init__()
        half = in_channels // 2
        if upsampling == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, half, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, half, 1),
            )
        self.block = ConvBlock(half + half, out_channels, residual)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION unet_up: up-sample, concatenate the skip on channels, ConvBlock
        x = self.up(x)  # (N, C_in / 2, 2H, 2W)
        return self.block(torch.cat([skip, x], dim=1))  # (N, C_out, 2H, 2W)
        # END SOLUTION
        # BEGIN PROMPT
        # Up-sample x with self.up, concatenate it with `skip` along the channel axis
        # (skip first), and pass the result through self.block.
        # END PROMPT


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) on the bottom and right to multiples of `multiple`.

    Reflection where the image is big enough (no artificial edge), replication otherwise.
    Returns the padded batch and the original (H, W) to crop back to.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


class UNet(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes, H, W) logits, for any H and W.

    Args:
        in_channels: image channels (1 for EM, 3 for RGB).
        num_classes: output channels: 1 for a binary mask or a heatmap, K for K classes.
        depth: number of 2x down-samplings (the paper: 4). Inputs are padded to a
            multiple of 2**depth.
        width: channels of the first level; level l has width * 2**l (the paper: 64).
        residual: ResNet-style blocks (an identity or 1x1 shortcut around each block).
        upsampling: "bilinear" (interpolate + 1x1 conv) or "transpose" (learnt 2x2).
        dropout: dropout probability at the bottleneck (the paper used 0.5 there).
        head_bias: the output layer's initial bias. For a detection heatmap whose peaks
            are rare, -2.19 starts every pixel at p = sigmoid(-2.19) = 0.1 instead of 0.5
            (the prior of Lin et al. 2017), which spares the first steps a huge loss.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        width: int = 32,
        residual: bool = False,
        upsampling: str = "bilinear",
        dropout: float = 0.0,
        head_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "UNet in_channels")
        num_classes = positive_int(num_classes, "UNet num_classes")
        self.depth = positive_int(depth, "UNet depth")
        width = positive_int(width, "UNet width")
        if upsampling not in UPSAMPLING:
            raise ModelError(
                f"UNet upsampling: expected one of {', '.join(UPSAMPLING)}, "
                f"received {upsampling!r}."
            )
        if not 0 <= dropout < 1:
            raise ModelError(f"UNet dropout: expected a probability in [0, 1), got {dropout!r}.")
        widths = [width * 2**level for level in range(self.depth + 1)]
        self.stem = ConvBlock(self.in_channels, widths[0], residual)
        self.downs = nn.ModuleList(
            Down(widths[level], widths[level + 1], residual) for level in range(self.depth)
        )
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.ups = nn.ModuleList(
            Up(widths[level + 1], widths[level], upsampling, residual)
            for level in reversed(range(self.depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        init_weights_(self)
        nn.init.constant_(self.head.bias, float(head_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, "UNet")
        x, (height, width) = pad_to_multiple(x, 2**self.depth)
        # BEGIN SOLUTION unet_forward: encoder with skips, bottleneck, decoder
        skips = [self.stem(x)]  # level 0: (N, w, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # level l: (N, w 2^l, H / 2^l, W / 2^l)
        x = self.dropout(skips.pop())  # the bottleneck
        for up in self.ups:
            x = up(x, skips.pop())
        # END SOLUTION
        # BEGIN PROMPT
        # The encoder: self.stem(x) gives level 0; each module of self.downs takes the
        # previous level's map and gives the next (half the size, twice the channels).
        # Keep every level's output in a list: they are the skips.
        # The bottleneck: the deepest level's map (not a skip), through self.dropout.
        # The decoder: each module of self.ups takes x and the skip of its size (the
        # deepest remaining one first): x = up(x, skip). Leave x as (N, w, H, W) for the
        # head below.
        # END PROMPT
        return self.head(x)[..., :height, :width]  # (N, num_classes, H, W)
