"""One UNet decoder for every encoder, sized from the encoder's declared channels and strides."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segkit.models.blocks import DoubleConv
from segkit.registry import DECODERS

__all__ = ["UNetDecoder"]


def _align(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Centre-crop or zero-pad ``x`` to ``size`` (H, W).

    Floor-rounding pools and ceil-rounding strided convs leave an up-sampled map one pixel
    short of or past its skip at odd sizes. F.pad crops where a pad is negative, so one call
    handles both directions on each axis.
    """
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


UPSAMPLE_MODES = ("transpose", "nearest", "bilinear")


class _UpStage(nn.Module):
    """Double the resolution, then (if there is a skip) join the encoder map of that size.

    "transpose" learns the up-sampling (a 2×2 stride-2 ConvTranspose that also sets the
    width, the lab's design); "nearest"/"bilinear" interpolate for free and leave the width
    change to the convs after the join (smp's design, much cheaper at high resolution).
    """

    def __init__(self, in_ch: int, out_ch: int, skip_ch: int = 0, upsample: str = "transpose"):
        super().__init__()
        if upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
            joined = out_ch + skip_ch
        else:
            self.up = nn.Upsample(scale_factor=2, mode=upsample)
            joined = in_ch + skip_ch
        self.conv = DoubleConv(joined, out_ch)

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([_align(x, skip.shape[-2:]), skip], dim=1)
        return self.conv(x)


@DECODERS.register(name="unet")
class UNetDecoder(nn.Module):
    """Transposed-conv up-sampling with a skip from each shallower encoder map, then a 1×1 head.

    Encoders whose shallowest map is coarser than the input (ResNet starts at stride 2) get
    extra skip-less up-sampling stages, so the logits always come out at stride 1 and every
    encoder pairs with this one decoder.

    ``channels``: None picks each stage's width from its skip (extra stages keep the last
    width), which reproduces the classic UNet and ResNet34-UNet exactly; or a list with one
    width per up stage, skip stages first (deep to shallow), then the extra stages, e.g.
    ``[256, 128, 64, 32, 16]`` for a ResNet, smp's light decoder.

    ``upsample``: "transpose" (the default, the lab's design), "nearest" or "bilinear".
    """

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 channels: Optional[Sequence[int]] = None, upsample: str = "transpose"):
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"UNetDecoder: MODEL.DECODER.UPSAMPLE is {upsample!r}; expected one of "
                             f"{list(UPSAMPLE_MODES)}")
        enc_ch, strides = list(encoder_channels), list(encoder_strides)
        n_extra = self._check_encoder(enc_ch, strides)
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"UNetDecoder: num_classes must be a positive int, got {num_classes!r}")
        skips = enc_ch[-2::-1]  # shallower maps, deepest first
        n_stages = len(skips) + n_extra
        if channels is None:
            channels = skips + [skips[-1] if skips else enc_ch[-1]] * n_extra
        channels = list(channels)
        if len(channels) != n_stages or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(
                f"UNetDecoder: channels must hold {n_stages} positive ints ({len(skips)} skip stages "
                f"+ {n_extra} extra stages for encoder strides {strides}), got {channels!r}")
        stages, prev = [], enc_ch[-1]
        for i, out in enumerate(channels):
            stages.append(_UpStage(prev, out, skips[i] if i < len(skips) else 0, upsample))
            prev = out
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(prev, num_classes, kernel_size=1)
        self.encoder_channels, self.encoder_strides, self.channels = enc_ch, strides, channels
        self.upsample = upsample

    @staticmethod
    def _check_encoder(enc_ch: List[int], strides: List[int]) -> int:
        """Validate the encoder's declaration; return how many extra ×2 stages reach stride 1."""
        if not enc_ch or len(enc_ch) != len(strides):
            raise ValueError(f"UNetDecoder: need one stride per encoder map, got encoder_channels={enc_ch} "
                             f"and encoder_strides={strides}")
        if any(b != 2 * a for a, b in zip(strides, strides[1:])):
            raise ValueError(f"UNetDecoder: encoder strides must double at each map "
                             f"(e.g. [2, 4, 8, 16, 32]), got {strides}")
        first = strides[0]
        if not (isinstance(first, int) and first > 0 and first & (first - 1) == 0):
            raise ValueError(f"UNetDecoder: the shallowest encoder stride must be a power of two "
                             f"so ×2 stages reach stride 1, got encoder_strides={strides}")
        return first.bit_length() - 1

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.encoder_channels):
            raise ValueError(f"UNetDecoder: expected {len(self.encoder_channels)} feature maps "
                             f"(encoder_channels={self.encoder_channels}), got {len(features)}")
        skips = list(features[-2::-1])
        x = features[-1]
        for i, stage in enumerate(self.stages):
            x = stage(x, skips[i] if i < len(skips) else None)
        return self.head(x)
