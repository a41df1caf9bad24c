"""SegNet's encoder (Badrinarayanan et al., 2017): VGG16-BN's 13 convs, keeping max-pool indices.

The layers sit in ``features`` at torchvision's ``vgg16_bn`` indices, so its ImageNet state dict
loads by key (MODEL.BACKBONE.WEIGHTS; the classifier is dropped). ``forward`` returns the five
pooled maps (strides 2..32) as a :class:`PooledFeatures` list, which also carries each pool's
indices and input size for SegNet's max-unpooling decoder; other decoders simply see a list.
"""
from typing import List, Sequence

import torch
from torch import nn

from segkit.registry import BACKBONES

__all__ = ["PooledFeatures", "VGG16BNSegNetEncoder"]

VGG16_STAGES = (2, 2, 3, 3, 3)  # convs per stage
VGG16_WIDTHS = (64, 128, 256, 512, 512)


class PooledFeatures(list):
    """The encoder's maps, plus ``indices`` and ``sizes`` (pre-pool H, W) of each max-pool."""

    def __init__(self, maps, indices, sizes):
        super().__init__(maps)
        self.indices, self.sizes = list(indices), list(sizes)


@BACKBONES.register(name="vgg16_bn_segnet")
class VGG16BNSegNetEncoder(nn.Module):
    """VGG16-BN encoder for SegNet: five conv stages, each ending in a 2×2 max-pool with indices.

    ``channels`` sets the five stage widths (VGG16's 64..512 by default; smaller for tests).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = VGG16_WIDTHS):
        super().__init__()
        channels = list(channels)
        if len(channels) != 5 or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(f"vgg16_bn_segnet: channels must be 5 positive ints, got {channels!r}")
        layers: List[nn.Module] = []
        self._pool_at: List[int] = []
        prev = in_channels
        for n_convs, width in zip(VGG16_STAGES, channels):
            for _ in range(n_convs):
                layers += [nn.Conv2d(prev, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                prev = width
            self._pool_at.append(len(layers))
            layers.append(nn.MaxPool2d(2, stride=2, return_indices=True))
        self.features = nn.Sequential(*layers)
        self.out_channels: List[int] = channels
        self.strides: List[int] = [2, 4, 8, 16, 32]
        self.stage_convs: List[int] = list(VGG16_STAGES)

    @property
    def output_stride(self) -> int:
        return 32

    def forward(self, x: torch.Tensor) -> PooledFeatures:
        maps, indices, sizes = [], [], []
        for i, layer in enumerate(self.features):
            if i in self._pool_at:
                sizes.append(tuple(x.shape[-2:]))
                x, idx = layer(x)
                maps.append(x)
                indices.append(idx)
            else:
                x = layer(x)
        return PooledFeatures(maps, indices, sizes)
