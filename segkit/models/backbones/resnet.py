"""ResNet encoders written out here, with torchvision's module names.

segkit keeps its own copy so the encoder's feature taps and ``in_channels`` are ours to
choose, while the matching state-dict keys (``conv1``, ``layer1.0.downsample.0`` …) still
let torchvision's ImageNet weights be loaded by key.
"""
from typing import List, Sequence

import torch
from torch import nn

from segkit.registry import BACKBONES

__all__ = ["BasicBlock", "ResNetEncoder", "resnet18", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3×3 convs plus a shortcut; the shortcut projects only when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """A BasicBlock ResNet without its classifier, returning the map before each down-sampling.

    The five maps are the stem (stride 2) and layer1..layer4 (strides 4..32). The stem map
    is tapped before the max-pool so the decoder has a stride-2 skip to restore fine detail.
    """

    widths = (64, 128, 256, 512)

    def __init__(self, in_channels: int = 3, layers: Sequence[int] = (3, 4, 6, 3)):
        super().__init__()
        layers = list(layers)
        if len(layers) != 4 or not all(isinstance(n, int) and n > 0 for n in layers):
            raise ValueError(f"ResNetEncoder: layers must be 4 positive block counts, got {layers!r}")
        if not (isinstance(in_channels, int) and in_channels > 0):
            raise ValueError(f"ResNetEncoder: in_channels must be a positive int, got {in_channels!r}")
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = 64
        for i, (width, blocks) in enumerate(zip(self.widths, layers)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(in_ch, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            in_ch = width
        self.out_channels: List[int] = [64, *self.widths]
        self.strides: List[int] = [2, 4, 8, 16, 32]
        self._init_weights()

    def _init_weights(self) -> None:
        # He init keeps activation variance steady through ReLU stacks when training from scratch.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x1 = self.relu(self.bn1(self.conv1(x)))
        x2 = self.layer1(self.maxpool(x1))
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        x5 = self.layer4(x4)
        return [x1, x2, x3, x4, x5]


@BACKBONES.register(name="resnet18")
def resnet18(in_channels: int = 3) -> ResNetEncoder:
    """ResNet18 encoder (BasicBlocks 2-2-2-2), five maps from stride 2 to 32."""
    return ResNetEncoder(in_channels, layers=(2, 2, 2, 2))


@BACKBONES.register(name="resnet34")
def resnet34(in_channels: int = 3) -> ResNetEncoder:
    """ResNet34 encoder (BasicBlocks 3-4-6-3), five maps from stride 2 to 32."""
    return ResNetEncoder(in_channels, layers=(3, 4, 6, 3))
