"""An encoder written outside segkit: register it, name it in a config, train it.

segkit imports this file before building anything, either because the config lists it in
``CUSTOM_IMPORTS`` or because the command line says ``--plugin examples/custom_backbone/tiny_backbone.py``.
The only contract: ``__init__`` accepts ``in_channels`` (plus the config node's other keys,
lower-cased), ``forward`` returns feature maps shallow to deep, and the module declares
``out_channels`` and ``strides`` (one int each per map). Any segkit decoder then fits it.
"""
from typing import List

import torch
from torch import nn

from segkit.registry import BACKBONES


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


@BACKBONES.register(name="tiny_convnet")
class TinyConvNet(nn.Module):
    """A four-stage strided-conv encoder (strides 2..16), ``width`` channels doubling per stage."""

    def __init__(self, in_channels: int = 3, width: int = 8):
        super().__init__()
        widths = [width * 2 ** i for i in range(4)]
        chans = [in_channels] + widths
        self.stages = nn.ModuleList([_stage(a, b, 2) for a, b in zip(chans, chans[1:])])
        self.out_channels: List[int] = widths
        self.strides: List[int] = [2, 4, 8, 16]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
