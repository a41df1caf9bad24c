"""Focal loss (Lin et al., 2017): cross-entropy scaled by (1 − p_t)^γ, so easy pixels count less."""
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from ..registry import LOSSES
from .pixelwise import PixelAveragedLoss


@LOSSES.register(name="focal")
class FocalLoss(PixelAveragedLoss):
    """Sigmoid focal loss (one channel, torchvision's) or softmax focal loss (C > 1), averaged
    over labelled pixels. ``gamma`` 0 gives back BCE / cross-entropy. ``alpha`` (binary only)
    weighs foreground pixels by alpha and background by 1 − alpha; None weighs both 1.
    ``class_weight`` (C > 1 only) multiplies each pixel's focal term by w[label] and divides by
    Σ w[label], as weighted cross-entropy does, so with gamma 0 it is
    ``nn.CrossEntropyLoss(weight=…)``. p_t is always the unweighted probability: a class weight
    says how much a pixel matters, not how hard it is.
    """

    term = "focal"
    binary_weight_key = "ALPHA"

    def __init__(self, ignore_index: int = 255, gamma: float = 2.0, alpha: float = None, class_weight=None):
        super().__init__(ignore_index, class_weight)
        if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"focal: alpha must lie in [0, 1] or be None, got {alpha!r}")
        self.gamma, self.alpha = float(gamma), alpha

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
