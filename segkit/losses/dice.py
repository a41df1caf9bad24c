"""Soft Dice loss: optimises the overlap the Dice metric measures, robust to class imbalance."""
import torch
from torch import nn

from ..registry import LOSSES
from .pixels import one_hot, probabilities


@LOSSES.register(name="dice")
class DiceLoss(nn.Module):
    """1 − soft Dice over labelled pixels, averaged over classes (foreground only if binary).

    The batch form sums intersections over the whole batch before dividing (as smp does), which
    keeps images with a tiny or empty foreground from dominating the gradient; ``per_image``
    divides image by image. ``smooth`` keeps the ratio defined when both sets are empty.
    """

    def __init__(self, ignore_index: int = 255, smooth: float = 1.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth = smooth

    def _terms(self, logits: torch.Tensor, target: torch.Tensor, dims: tuple):
        probs = probabilities(logits)
        gt = one_hot(target, logits.shape[1], self.ignore_index)
        valid = (target != self.ignore_index).unsqueeze(1).float()
        probs = probs * valid
        inter = (probs * gt).sum(dims)
        total = probs.sum(dims) + gt.sum(dims)
        return 1.0 - (2.0 * inter + self.smooth) / (total + self.smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._terms(logits, target, dims=(0, 2, 3)).mean()

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._terms(logits, target, dims=(2, 3)).mean(dim=1)
