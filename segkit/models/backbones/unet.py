"""The plain UNet encoder (Ronneberger et al., 2015), with padded convs and BatchNorm."""
from typing import List, Sequence

import torch
from torch import nn

from segkit.models.blocks import DoubleConv
from segkit.registry import BACKBONES

__all__ = ["UNetEncoder"]


@BACKBONES.register(name="unet")
class UNetEncoder(nn.Module):
    """A DoubleConv at full resolution, then one max-pool + DoubleConv per further width.

    Its first map is at stride 1, unlike most classification backbones; the UNet decoder
    reads that from ``strides`` and so adds no extra up-sampling stage for it.
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (64, 128, 256, 512, 1024)):
        super().__init__()
        channels = list(channels)
        if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(f"UNetEncoder: channels must be a non-empty list of positive ints, got {channels!r}")
        if not (isinstance(in_channels, int) and in_channels > 0):
            raise ValueError(f"UNetEncoder: in_channels must be a positive int, got {in_channels!r}")
        stages = [DoubleConv(in_channels, channels[0])]
        for prev, width in zip(channels, channels[1:]):
            stages.append(nn.Sequential(nn.MaxPool2d(2), DoubleConv(prev, width)))
        self.stages = nn.ModuleList(stages)
        self.out_channels: List[int] = channels
        self.strides: List[int] = [2 ** i for i in range(len(channels))]

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
