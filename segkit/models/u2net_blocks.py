"""U²-Net's Residual U-blocks (Qin et al., 2020), shared by its encoder and decoder.

An RSU-L block is a small L-level U-Net inside one stage, added to its input projection, so
each stage sees several scales at once; RSU-4F replaces pooling by growing dilations for the
deepest, already small maps. Layer names follow the authors' code (``rebnconvin``,
``rebnconv1``… ``rebnconv1d``) so their checkpoints map by key.
"""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["REBNConv", "RSU", "RSUF", "rsu_block", "upsample_like"]


def upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return x if x.shape[-2:] == ref.shape[-2:] else F.interpolate(x, size=ref.shape[-2:], mode="bilinear",
                                                                  align_corners=False)


class REBNConv(nn.Module):
    """3×3 conv (dilated) → BN → ReLU, with the authors' attribute names."""

    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """RSU-``height``: input conv, a ``height``-level U-Net of ``mid_ch`` convs, residual add."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        if height < 2:
            raise ValueError(f"RSU height must be at least 2, got {height}")
        self.height = height
        self.rebnconvin = REBNConv(in_ch, out_ch)
        self.rebnconv1 = REBNConv(out_ch, mid_ch)
        for i in range(2, height):
            setattr(self, f"rebnconv{i}", REBNConv(mid_ch, mid_ch))
        setattr(self, f"rebnconv{height}", REBNConv(mid_ch, mid_ch, dirate=2))
        for i in range(height - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNConv(2 * mid_ch, mid_ch))
        self.rebnconv1d = REBNConv(2 * mid_ch, out_ch)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        enc = [getattr(self, "rebnconv1")(hxin)]
        for i in range(2, self.height):
            enc.append(getattr(self, f"rebnconv{i}")(self.pool(enc[-1])))
        hx = getattr(self, f"rebnconv{self.height}")(enc[-1])
        for i in range(self.height - 1, 1, -1):
            hx = getattr(self, f"rebnconv{i}d")(torch.cat([hx, enc[i - 1]], 1))
            hx = upsample_like(hx, enc[i - 2])
        return self.rebnconv1d(torch.cat([hx, enc[0]], 1)) + hxin


class RSUF(nn.Module):
    """RSU-4F: the four-level block with dilations 1, 2, 4, 8 instead of pooling."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        self.rebnconvin = REBNConv(in_ch, out_ch)
        self.rebnconv1 = REBNConv(out_ch, mid_ch, 1)
        self.rebnconv2 = REBNConv(mid_ch, mid_ch, 2)
        self.rebnconv3 = REBNConv(mid_ch, mid_ch, 4)
        self.rebnconv4 = REBNConv(mid_ch, mid_ch, 8)
        self.rebnconv3d = REBNConv(2 * mid_ch, mid_ch, 4)
        self.rebnconv2d = REBNConv(2 * mid_ch, mid_ch, 2)
        self.rebnconv1d = REBNConv(2 * mid_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat([hx4, hx3], 1))
        hx2d = self.rebnconv2d(torch.cat([hx3d, hx2], 1))
        return self.rebnconv1d(torch.cat([hx2d, hx1], 1)) + hxin


def rsu_block(height: int, in_ch: int, mid_ch: int, out_ch: int) -> nn.Module:
    """RSU-``height`` for height ≥ 2, RSU-4F for height 0 (the convention of U²-Net configs here)."""
    return RSUF(in_ch, mid_ch, out_ch) if height == 0 else RSU(height, in_ch, mid_ch, out_ch)
