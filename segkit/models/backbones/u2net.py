"""U²-Net's encoder (Qin et al., 2020): six RSU stages, a max-pool between consecutive ones.

It returns the six stage outputs at strides 1..32, so it also pairs with the generic
decoders; the ``u2net`` decoder adds U²-Net's RSU decoder and deep-supervised side outputs.
"""
from typing import List, Sequence

import torch
from torch import nn

from segkit.models.u2net_blocks import rsu_block
from segkit.registry import BACKBONES

__all__ = ["U2NetEncoder", "U2NET_HEIGHTS", "u2netp"]

# RSU height per stage, shallow to deep; 0 is RSU-4F (dilated, no pooling).
U2NET_HEIGHTS = (7, 6, 5, 4, 0, 0)


@BACKBONES.register(name="u2net")
class U2NetEncoder(nn.Module):
    """U²-Net encoder: RSU-7, 6, 5, 4, 4F, 4F with the paper's widths (44M-parameter model).

    ``channels`` are the stage outputs and ``mid_channels`` the widths inside each RSU;
    ``u2netp`` is the same class with the small widths (64 / 16 throughout).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (64, 128, 256, 512, 512, 512),
                 mid_channels: Sequence[int] = (32, 32, 64, 128, 256, 256),
                 heights: Sequence[int] = U2NET_HEIGHTS):
        super().__init__()
        channels, mid_channels, heights = list(channels), list(mid_channels), list(heights)
        if not (len(channels) == len(mid_channels) == len(heights)) or not channels:
            raise ValueError(f"u2net: channels, mid_channels and heights need one entry per stage, got "
                             f"{channels}, {mid_channels}, {heights}")
        if not all(isinstance(c, int) and c > 0 for c in channels + mid_channels):
            raise ValueError(f"u2net: channels and mid_channels must be positive ints, got {channels}, {mid_channels}")
        prev, stages = in_channels, []
        for h, mid, out in zip(heights, mid_channels, channels):
            stages.append(rsu_block(h, prev, mid, out))
            prev = out
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.out_channels: List[int] = channels
        self.strides: List[int] = [2 ** i for i in range(len(channels))]
        self.heights = heights

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            feats.append(x)
        return feats


@BACKBONES.register(name="u2netp")
def u2netp(in_channels: int = 3, **kwargs) -> U2NetEncoder:
    """U²-Net-p encoder: the same six RSU stages, 64 channels out and 16 inside each (1.1M-parameter model)."""
    kwargs.setdefault("channels", (64,) * 6)
    kwargs.setdefault("mid_channels", (16,) * 6)
    return U2NetEncoder(in_channels, **kwargs)
