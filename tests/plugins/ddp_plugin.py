"""Test-only parts for the DDP test, loaded with --plugin.

BatchNorm normalises with the statistics of the batch it sees, so two processes holding half
the batch each compute slightly different updates than one process holding all of it, and
torch's SyncBatchNorm (which would fix that) needs CUDA. GroupNorm normalises each image on
its own, so with this model DDP on CPU must reproduce a single-process run to float rounding.
"""
import torch
from torch import nn

from segkit.engine.hooks import HookBase
from segkit.registry import BACKBONES, DECODERS, HOOKS


def _conv_gn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.GroupNorm(2, cout), nn.ReLU(inplace=True))


@BACKBONES.register(name="tiny_gn")
class TinyGNEncoder(nn.Module):
    """Two GroupNorm conv stages at strides 1 and 2."""

    def __init__(self, in_channels: int = 3, width: int = 8):
        super().__init__()
        self.stem = _conv_gn(in_channels, width)
        self.down = _conv_gn(width, 2 * width, stride=2)
        self.out_channels, self.strides = [width, 2 * width], [1, 2]

    def forward(self, x):
        a = self.stem(x)
        return [a, self.down(a)]


@DECODERS.register(name="tiny_gn")
class TinyGNDecoder(nn.Module):
    """Up-sample the deep map, join the shallow one, 1x1 head."""

    def __init__(self, encoder_channels, encoder_strides, num_classes: int):
        super().__init__()
        shallow, deep = encoder_channels
        self.up = nn.ConvTranspose2d(deep, shallow, 2, stride=2)
        self.head = nn.Conv2d(2 * shallow, num_classes, 1)

    def forward(self, features):
        a, b = features
        return self.head(torch.cat([self.up(b), a], dim=1))


@HOOKS.register(name="stop_after")
class StopAfter(HookBase):
    """Ends the run after epoch ``epoch`` (1-based), as early stopping would, on every rank."""

    def __init__(self, epoch: int = 1):
        self.epoch = int(epoch)

    def after_epoch(self) -> None:
        if self.trainer.epoch + 1 == self.epoch:
            self.trainer.stop_reason = f"stop_after {self.epoch}"
