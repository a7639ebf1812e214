"""A small fully convolutional network for dense (per-pixel) prediction.

It keeps the input's height and width: stacked 3x3 conv-BN-ReLU blocks, then a 1x1
convolution to one logit per output channel and pixel. It is the minimal dense model that
proves the segmentation task end to end; the U-Net (an encoder-decoder with skips) is
the model to use on real images.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.models.common import check_images, init_weights_, positive_int, positive_ints


class SmallFCN(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes, H, W) logits.

    Args:
        in_channels: image channels.
        num_classes: output channels (1 for a binary mask).
        widths: channels of each 3x3 conv-BN-ReLU block.
        batch_norm: False drops BatchNorm (conv with bias -> ReLU), so a result does not
            depend on how a batch is split across processes.
    """

    def __init__(
        self, in_channels: int, num_classes: int, widths=(16, 16, 16), batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "SmallFCN in_channels")
        widths = positive_ints(widths, "SmallFCN widths")
        layers, channels = [], self.in_channels
        for width in widths:
            layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, positive_int(num_classes, "SmallFCN num_classes"), 1)
        init_weights_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, "SmallFCN")
        return self.head(self.features(x))  # (N, num_classes, H, W)
