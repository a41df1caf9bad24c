"""Building blocks shared by more than one encoder or decoder."""
from torch import nn

__all__ = ["DoubleConv"]


class DoubleConv(nn.Sequential):
    """Two 3×3 conv → BN → ReLU layers: the unit every UNet stage is made of.

    Padding 1 keeps the spatial size, so skip connections line up without the cropping of
    the original (unpadded) UNet. The convs have no bias because the BatchNorm right after
    each one adds its own shift; this also gives the canonical 31.0M-parameter UNet.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )
        self.in_ch, self.out_ch = in_ch, out_ch
