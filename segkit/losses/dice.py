"""Soft Dice loss: optimises the overlap the Dice metric measures, robust to class imbalance."""
import torch
from torch import nn

from ..registry import LOSSES
from .pixels import one_hot, probabilities

ABSENT_CLASSES = ("keep", "drop")


@LOSSES.register(name="dice")
class DiceLoss(nn.Module):
    """1 − soft Dice over labelled pixels, averaged over classes (foreground only if binary).

    The batch form sums intersections over the whole batch before dividing (as smp does), which
    keeps images with a tiny or empty foreground from dominating the gradient; ``per_image``
    divides image by image. ``smooth`` keeps the ratio defined when both sets are empty.

    ``absent_classes`` says what a class with no ground-truth pixel in the reduction (the batch,
    or the image for ``per_image``) contributes:

    - ``"keep"`` (default, segkit's behaviour so far): 1 − smooth / (Σp + smooth), which is
      0 only when the class is predicted nowhere, so it keeps pushing that class's
      probability down.
    - ``"drop"`` (segmentation_models_pytorch's DiceLoss): 0. The mean is still over all
      classes, so a batch missing classes has a smaller loss, not a re-weighted one; as in smp
      the denominator is clamped at ``eps``. A binary model whose batch has no foreground
      scores 0.
    """

    def __init__(self, ignore_index: int = 255, smooth: float = 1.0, absent_classes: str = "keep",
                 eps: float = 1e-7):
        super().__init__()
        if absent_classes not in ABSENT_CLASSES:
            raise ValueError(f"dice: absent_classes must be one of {', '.join(ABSENT_CLASSES)}, got {absent_classes!r}")
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.absent_classes, self.eps = absent_classes, float(eps)

    def _terms(self, logits: torch.Tensor, target: torch.Tensor, dims: tuple):
        probs = probabilities(logits)
        gt = one_hot(target, logits.shape[1], self.ignore_index)
        valid = (target != self.ignore_index).unsqueeze(1).float()
        probs = probs * valid
        inter = (probs * gt).sum(dims)
        total = probs.sum(dims) + gt.sum(dims)
        if self.absent_classes == "keep":
            return 1.0 - (2.0 * inter + self.smooth) / (total + self.smooth)
        loss = 1.0 - (2.0 * inter + self.smooth) / (total + self.smooth).clamp_min(self.eps)
        return loss * (gt.sum(dims) > 0).to(loss.dtype)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._terms(logits, target, dims=(0, 2, 3)).mean()

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._terms(logits, target, dims=(2, 3)).mean(dim=1)
