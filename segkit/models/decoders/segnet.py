"""SegNet's decoder: max-unpooling with the encoder's pool indices, then the mirrored VGG convs."""
from typing import List, Sequence

import torch
from torch import nn

from segkit.models.decoders._common import ConvBNReLU
from segkit.registry import DECODERS

__all__ = ["SegNetDecoder", "max_unpool"]


def max_unpool(x: torch.Tensor, indices: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``F.max_unpool2d`` as a scatter into a zero map of ``size`` (the pre-pool H, W).

    Same values and gradients; unlike F.max_unpool2d (torch 2.14) it can be traced, so SegNet
    exports to TorchScript / ONNX with dynamic sizes.
    """
    b, c = x.shape[0], x.shape[1]
    out = x.new_zeros(b, c, size[0] * size[1]).scatter(2, indices.flatten(2), x.flatten(2))
    return out.view(b, c, size[0], size[1])


@DECODERS.register(name="segnet")
class SegNetDecoder(nn.Module):
    """SegNet decoder: max-unpooling with the encoder's pool indices, then mirrored VGG convs.

    Each stage (deep to shallow) unpools with the matching encoder indices, then runs the
    encoder stage's convs mirrored; the last conv of a stage narrows to the next stage's width
    and the final 3×3 conv gives the logits, as in the paper (no skips: the indices carry
    the boundary detail). Needs an encoder that returns pool indices (``vgg16_bn_segnet``).

    ``stage_convs``: convs per stage, shallow to deep (VGG16: 2, 2, 3, 3, 3).
    """

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], num_classes: int,
                 stage_convs: Sequence[int] = (2, 2, 3, 3, 3)):
        super().__init__()
        enc_ch, strides = list(encoder_channels), list(encoder_strides)
        if strides != [2 ** (i + 1) for i in range(len(strides))]:
            raise ValueError(f"SegNetDecoder: needs one max-pooled map per stride 2, 4, 8, …, got strides {strides}")
        stage_convs = list(stage_convs)
        if len(stage_convs) != len(enc_ch) or not all(isinstance(n, int) and n > 0 for n in stage_convs):
            raise ValueError(f"SegNetDecoder: stage_convs must hold {len(enc_ch)} positive ints, got {stage_convs!r}")
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"SegNetDecoder: num_classes must be a positive int, got {num_classes!r}")
        stages: List[nn.Module] = []
        for level in reversed(range(len(enc_ch))):
            width = enc_ch[level]
            out = enc_ch[level - 1] if level > 0 else width
            convs = [ConvBNReLU(width, width) for _ in range(stage_convs[level] - 1)]
            convs.append(ConvBNReLU(width, out) if level > 0 else nn.Identity())
            stages.append(nn.Sequential(*convs))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(enc_ch[0], num_classes, 3, padding=1)
        self.encoder_channels = enc_ch

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        indices, sizes = getattr(features, "indices", None), getattr(features, "sizes", None)
        if indices is None or sizes is None:
            raise TypeError("SegNetDecoder needs the encoder's max-pool indices; pair it with backbone "
                            "vgg16_bn_segnet (or an encoder that returns segkit PooledFeatures)")
        x = features[-1]
        for stage, idx, size in zip(self.stages, reversed(indices), reversed(sizes)):
            x = stage(max_unpool(x, idx, size))
        return self.head(x)
