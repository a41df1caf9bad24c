"""Cross-entropy: sigmoid BCE for one output channel, softmax CE for several."""
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES
from .pixels import batch_mean, per_image_mean, valid_mask


@LOSSES.register(name="bce")
class CrossEntropy(nn.Module):
    """BCE-with-logits (one channel) or cross-entropy (C > 1), averaged over labelled pixels.

    With no ignored pixels the batch value equals ``nn.BCEWithLogitsLoss()`` on the same
    tensors, which is what the lab recipe trains with.
    """

    def __init__(self, ignore_index: int = 255, pos_weight: float = None):
        super().__init__()
        self.ignore_index = ignore_index
        self.pos_weight = pos_weight

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] == 1:
            pw = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
            t = (target == 1).float()
            return F.binary_cross_entropy_with_logits(logits[:, 0], t, reduction="none", pos_weight=pw)
        return F.cross_entropy(logits, target.long(), ignore_index=self.ignore_index, reduction="none")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return batch_mean(self.pixel_losses(logits, target), valid_mask(target, self.ignore_index))

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return per_image_mean(self.pixel_losses(logits, target), valid_mask(target, self.ignore_index))
