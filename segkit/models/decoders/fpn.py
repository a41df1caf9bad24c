"""FPN semantic head (Kirillov et al., Panoptic FPN, 2019), generic over any encoder."""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segkit.models.decoders._common import ConvBNReLU, check_encoder, upsample_to_input
from segkit.registry import DECODERS

__all__ = ["FPNDecoder"]


class _ScaleBranch(nn.Module):
    """3×3 conv blocks, each followed by ×2 up-sampling, until the map reaches the finest level."""

    def __init__(self, in_ch: int, out_ch: int, n_up: int):
        super().__init__()
        blocks = [ConvBNReLU(in_ch, out_ch)]
        blocks += [ConvBNReLU(out_ch, out_ch) for _ in range(max(0, n_up - 1))]
        self.blocks, self.n_up = nn.ModuleList(blocks), n_up

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < self.n_up:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return x if x.shape[-2:] == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@DECODERS.register(name="fpn")
class FPNDecoder(nn.Module):
    """Top-down pyramid over the encoder maps, merged at the finest used level, then up-sampled.

    ``min_stride``: maps finer than this are left out (the classic head starts at stride 4;
    a stride-1 UNet map would make the merge very costly). ``pyramid_channels`` and
    ``segmentation_channels`` are the widths of the lateral and merge convs (256 / 128 as in
    the paper and smp). The logits are bilinearly up-sampled from the finest level to stride 1.
    """

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 pyramid_channels: int = 256, segmentation_channels: int = 128, min_stride: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        enc_ch, strides = list(encoder_channels), list(encoder_strides)
        check_encoder("FPNDecoder", enc_ch, strides, num_classes)
        keep = [i for i, s in enumerate(strides) if s >= min_stride] or [len(strides) - 1]
        self.levels = keep
        self.laterals = nn.ModuleList([nn.Conv2d(enc_ch[i], pyramid_channels, 1) for i in keep])
        finest = strides[keep[0]]
        self.branches = nn.ModuleList([
            _ScaleBranch(pyramid_channels, segmentation_channels, (strides[i] // finest).bit_length() - 1)
            for i in keep])
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.head = nn.Conv2d(segmentation_channels, num_classes, 1)
        self.finest_stride = finest
        self.encoder_channels, self.encoder_strides = enc_ch, strides

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.encoder_channels):
            raise ValueError(f"FPNDecoder: expected {len(self.encoder_channels)} feature maps, got {len(features)}")
        maps = [features[i] for i in self.levels]
        p = self.laterals[-1](maps[-1])
        pyramid = [p]
        for lateral, f in zip(reversed(self.laterals[:-1]), reversed(maps[:-1])):
            p = lateral(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
            pyramid.insert(0, p)
        size = pyramid[0].shape[-2:]
        merged = sum(branch(p, size) for branch, p in zip(self.branches, pyramid))
        return upsample_to_input(self.head(self.dropout(merged)), self.finest_stride)
