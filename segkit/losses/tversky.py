"""Tversky and focal-Tversky losses: Dice with separate weights on false positives and negatives."""
import torch
from torch import nn

from ..registry import LOSSES
from .pixels import one_hot, probabilities


@LOSSES.register(name="tversky")
class TverskyLoss(nn.Module):
    """1 − (TP + s) / (TP + α·FP + β·FN + s) on soft counts over labelled pixels (Salehi et al., 2017).

    β > α punishes missed foreground more, which helps thin or small structures; α = β = 0.5
    is Dice (with smoothing 2s). Classes are averaged (foreground only if binary). As with
    ``dice``, the batch form sums counts over the whole batch; ``per_image`` image by image.
    """

    def __init__(self, ignore_index: int = 255, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0):
        super().__init__()
        if float(alpha) < 0 or float(beta) < 0:
            raise ValueError(f"tversky: alpha and beta must be ≥ 0, got alpha={alpha!r}, beta={beta!r}")
        self.ignore_index, self.alpha, self.beta, self.smooth = ignore_index, float(alpha), float(beta), float(smooth)

    def index(self, logits: torch.Tensor, target: torch.Tensor, dims: tuple) -> torch.Tensor:
        """Tversky index per class (and per image when ``dims`` keeps the batch axis)."""
        valid = (target != self.ignore_index).unsqueeze(1).float()
        probs = probabilities(logits) * valid
        gt = one_hot(target, logits.shape[1], self.ignore_index)
        tp = (probs * gt).sum(dims)
        fp = (probs * (1.0 - gt)).sum(dims)
        fn = ((1.0 - probs) * gt * valid).sum(dims)
        return (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.index(logits, target, dims=(0, 2, 3))).mean()

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.index(logits, target, dims=(2, 3))).mean(dim=1)


@LOSSES.register(name="focal_tversky")
class FocalTverskyLoss(TverskyLoss):
    """(1 − Tversky index)^γ per class, averaged (Abraham & Khan, 2019; their γ = 4/3 is our 0.75).

    γ < 1 raises the loss of classes that are already fairly well segmented less than of
    those far off, focusing training on the hard ones; γ = 1 is the Tversky loss.
    """

    def __init__(self, ignore_index: int = 255, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0,
                 gamma: float = 0.75):
        super().__init__(ignore_index, alpha, beta, smooth)
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.index(logits, target, dims=(0, 2, 3))).clamp_min(0).pow(self.gamma).mean()

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.index(logits, target, dims=(2, 3))).clamp_min(0).pow(self.gamma).mean(dim=1)
