"""Focal loss (Lin et al., 2017): cross-entropy scaled by (1 − p_t)^γ, so easy pixels count less."""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from ..registry import LOSSES
from .pixels import batch_mean, per_image_mean, valid_mask


@LOSSES.register(name="focal")
class FocalLoss(nn.Module):
    """Sigmoid focal loss (one channel, torchvision's) or softmax focal loss (C > 1), averaged
    over labelled pixels. ``gamma`` 0 gives back BCE / cross-entropy. ``alpha`` (binary only)
    weighs foreground pixels by alpha and background by 1 − alpha; None weighs both 1.
    """

    def __init__(self, ignore_index: int = 255, gamma: float = 2.0, alpha: float = None):
        super().__init__()
        if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"focal: alpha must lie in [0, 1] or be None, got {alpha!r}")
        self.ignore_index, self.gamma, self.alpha = ignore_index, float(gamma), alpha

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] == 1:
            t = (target == 1).float()
            alpha = -1.0 if self.alpha is None else float(self.alpha)
            return sigmoid_focal_loss(logits[:, 0], t, alpha=alpha, gamma=self.gamma, reduction="none")
        if self.alpha is not None:
            raise ValueError("focal: alpha is defined for binary models (NUM_CLASSES 1) only; leave it unset")
        ce = F.cross_entropy(logits, target.long(), ignore_index=self.ignore_index, reduction="none")
        return (1.0 - torch.exp(-ce)) ** self.gamma * ce

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return batch_mean(self.pixel_losses(logits, target), valid_mask(target, self.ignore_index))

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return per_image_mean(self.pixel_losses(logits, target), valid_mask(target, self.ignore_index))
