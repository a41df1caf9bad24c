"""Pieces shared by the heads that are generic over any encoder (FPN, DeepLabV3+)."""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBNReLU", "check_encoder", "upsample_to_input", "pick_level"]


class ConvBNReLU(nn.Sequential):
    """k×k conv (no bias: the BN shifts) → BatchNorm → ReLU, padding keeping the size."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


def check_encoder(who: str, enc_ch: Sequence[int], strides: Sequence[int], num_classes: int) -> None:
    """The declaration every generic head relies on: one increasing stride per map."""
    enc_ch, strides = list(enc_ch), list(strides)
    if not enc_ch or len(enc_ch) != len(strides):
        raise ValueError(f"{who}: need one stride per encoder map, got encoder_channels={enc_ch} "
                         f"and encoder_strides={strides}")
    if any(b <= a for a, b in zip(strides, strides[1:])) or strides[0] < 1:
        raise ValueError(f"{who}: encoder strides must be positive and increasing, got {strides}")
    if not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(f"{who}: num_classes must be a positive int, got {num_classes!r}")


def upsample_to_input(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Bilinear up-sampling of a stride-``stride`` map to stride 1 (the Segmentor pads inputs
    to a multiple of the encoder's output stride, so the factor is exact)."""
    if stride == 1:
        return x
    return F.interpolate(x, scale_factor=stride, mode="bilinear", align_corners=False)


def pick_level(strides: List[int], want: int) -> int:
    """Index of the map whose stride is closest to ``want`` (ties: the finer one)."""
    return min(range(len(strides)), key=lambda i: (abs(strides[i] - want), strides[i]))
