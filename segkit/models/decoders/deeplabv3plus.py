"""DeepLabV3+ head (Chen et al., 2018): ASPP on the deepest map plus one low-level skip.

Generic over any encoder: ASPP runs on whatever the deepest map is (segkit does not dilate
encoders, so with stride-32 encoders the rates default to (6, 12, 18), matching the paper's
receptive field at stride 16 halved), and the skip is the map closest to stride 4.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segkit.models.decoders._common import ConvBNReLU, check_encoder, pick_level, upsample_to_input
from segkit.registry import DECODERS

__all__ = ["ASPP", "DeepLabV3PlusDecoder"]


class ASPP(nn.Module):
    """1×1 conv, three dilated 3×3 convs and image-level pooling, concatenated and projected.

    The pooling branch has no BatchNorm: after global pooling a batch of one would give BN a
    single value per channel, which it cannot normalise in training.
    """

    def __init__(self, in_ch: int, out_ch: int, rates: Sequence[int], dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList([ConvBNReLU(in_ch, out_ch, 1)] +
                                      [ConvBNReLU(in_ch, out_ch, 3, dilation=int(r)) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(ConvBNReLU(out_ch * (len(rates) + 2), out_ch, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


@DECODERS.register(name="deeplabv3plus")
class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+ head: ASPP on the deepest map joined with one low-level map, for any encoder.

    ASPP (``channels`` wide) on the deepest map is up-sampled to the stride-``low_level_stride``
    map's size, joined with that map projected to ``low_level_channels``, two 3×3 convs, a 1×1
    classifier, then bilinear up-sampling to stride 1."""

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 channels: int = 256, low_level_channels: int = 48, rates: Sequence[int] = (6, 12, 18),
                 low_level_stride: int = 4):
        super().__init__()
        enc_ch, strides = list(encoder_channels), list(encoder_strides)
        check_encoder("DeepLabV3PlusDecoder", enc_ch, strides, num_classes)
        rates = list(rates)
        if not rates or not all(isinstance(r, int) and r > 0 for r in rates):
            raise ValueError(f"DeepLabV3PlusDecoder: rates must be positive ints, got {rates!r}")
        self.low = pick_level(strides[:-1], low_level_stride) if len(strides) > 1 else 0
        self.aspp = ASPP(enc_ch[-1], channels, rates)
        self.low_proj = ConvBNReLU(enc_ch[self.low], low_level_channels, 1)
        self.fuse = nn.Sequential(ConvBNReLU(channels + low_level_channels, channels),
                                  ConvBNReLU(channels, channels))
        self.head = nn.Conv2d(channels, num_classes, 1)
        self.low_stride = strides[self.low]
        self.encoder_channels, self.encoder_strides = enc_ch, strides

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.encoder_channels):
            raise ValueError(f"DeepLabV3PlusDecoder: expected {len(self.encoder_channels)} feature maps, "
                             f"got {len(features)}")
        low = features[self.low]
        x = F.interpolate(self.aspp(features[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, self.low_proj(low)], dim=1))
        return upsample_to_input(self.head(x), self.low_stride)
