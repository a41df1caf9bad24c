"""U²-Net's decoder: RSU stages mirroring the encoder, a side output per stage, and their fusion.

Deep supervision: in training mode ``forward`` returns ``[fused, side1, …, side6]`` (logits at
input resolution, main output first) so the loss is taken on every one of them, as in the
paper; in eval mode it returns the fused logits only, so evaluation, export and inference see
an ordinary model.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from segkit.models.backbones.u2net import U2NET_HEIGHTS
from segkit.models.u2net_blocks import rsu_block, upsample_like
from segkit.registry import DECODERS

__all__ = ["U2NetDecoder", "u2netp_decoder"]


@DECODERS.register(name="u2net")
class U2NetDecoder(nn.Module):
    """U²-Net decoder: RSU stages with a side output each, fused; deep supervision while training.

    De-stages from deep to shallow: up-sample, concat the encoder map, RSU (same height as the
    encoder stage at that level); a 3×3 side conv on each, and a 1×1 conv fusing all sides.

    ``mid_channels`` (shallow to deep, one per de-stage) default to the paper's U²-Net rule:
    half the stage width, 16 at full resolution. ``u2netp`` uses 16 everywhere.
    """

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 mid_channels: Optional[Sequence[int]] = None, heights: Sequence[int] = U2NET_HEIGHTS):
        super().__init__()
        enc_ch, strides, heights = list(encoder_channels), list(encoder_strides), list(heights)
        n = len(enc_ch)
        if n < 2 or strides != [2 ** i for i in range(n)]:
            raise ValueError(f"U2NetDecoder: needs an encoder with maps at strides 1, 2, 4, … (like u2net), "
                             f"got encoder_strides={strides}")
        if len(heights) != n:
            raise ValueError(f"U2NetDecoder: heights needs {n} entries (one per encoder map), got {heights}")
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"U2NetDecoder: num_classes must be a positive int, got {num_classes!r}")
        outs = [enc_ch[max(i - 1, 0)] for i in range(n - 1)]  # de-stage i returns the width of level i-1
        if mid_channels is None:
            mid_channels = [16] + [o // 2 for o in outs[1:]]
        mid_channels = list(mid_channels)
        if len(mid_channels) != n - 1:
            raise ValueError(f"U2NetDecoder: mid_channels needs {n - 1} entries (one per decoder stage, "
                             f"shallow to deep), got {mid_channels}")
        self.stages = nn.ModuleList([rsu_block(heights[i], enc_ch[i + 1] + enc_ch[i] if i == n - 2 else
                                               outs[i + 1] + enc_ch[i], mid_channels[i], outs[i])
                                     for i in range(n - 1)])
        side_in = outs + [enc_ch[-1]]
        self.sides = nn.ModuleList([nn.Conv2d(c, num_classes, 3, padding=1) for c in side_in])
        self.fuse = nn.Conv2d(n * num_classes, num_classes, 1)
        self.encoder_channels = enc_ch

    def forward(self, features: Sequence[torch.Tensor]):
        feats = list(features)
        if len(feats) != len(self.encoder_channels):
            raise ValueError(f"U2NetDecoder: expected {len(self.encoder_channels)} feature maps, got {len(feats)}")
        x, decoded = feats[-1], [None] * len(self.stages)
        for i in reversed(range(len(self.stages))):
            x = self.stages[i](torch.cat([upsample_like(x, feats[i]), feats[i]], 1))
            decoded[i] = x
        ref = feats[0]
        sides = [upsample_like(side(d), ref) for side, d in zip(self.sides, decoded + [feats[-1]])]
        fused = self.fuse(torch.cat(sides, 1))
        return [fused, *sides] if self.training else fused


@DECODERS.register(name="u2netp")
def u2netp_decoder(encoder_channels, encoder_strides, num_classes, **kwargs) -> U2NetDecoder:
    """U²-Net-p decoder: U²-Net's decoder with 16 channels inside every RSU stage."""
    kwargs.setdefault("mid_channels", [16] * (len(encoder_channels) - 1))
    return U2NetDecoder(encoder_channels, encoder_strides, num_classes, **kwargs)

