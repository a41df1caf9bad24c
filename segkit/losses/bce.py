"""Cross-entropy: sigmoid BCE for one output channel, softmax CE for several."""
import torch
import torch.nn.functional as F

from ..registry import LOSSES
from .pixelwise import PixelAveragedLoss


@LOSSES.register(name="bce")
class CrossEntropy(PixelAveragedLoss):
    """BCE-with-logits (one channel) or cross-entropy (C > 1), averaged over labelled pixels.

    With no ignored pixels the batch value equals ``nn.BCEWithLogitsLoss()`` on the same
    tensors, which is what the lab recipe trains with. Imbalance: ``pos_weight`` weighs a
    binary model's foreground pixels (as BCEWithLogitsLoss does); ``class_weight`` (C weights)
    weighs a multi-class model's classes, giving ``nn.CrossEntropyLoss(weight=…)``'s value.
    Each is refused on the other kind of model rather than silently ignored.
    """

    term = "bce"

    def __init__(self, ignore_index: int = 255, pos_weight: float = None, class_weight=None):
        super().__init__(ignore_index, class_weight)
        self.pos_weight = pos_weight

    def check_channels(self, channels: int) -> None:
        super().check_channels(channels)
        if self.pos_weight is not None and channels > 1:
            raise ValueError(f"bce: pos_weight weighs the foreground of a binary model (1 output channel), but this "
                             f"model has {channels}: weigh its classes with CLASS_WEIGHT (a list of {channels} "
                             f"weights, median_frequency or inverse_sqrt_frequency) instead")

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] == 1:
            pw = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
            t = (target == 1).float()
            return F.binary_cross_entropy_with_logits(logits[:, 0], t, reduction="none", pos_weight=pw)
        return F.cross_entropy(logits, target.long(), ignore_index=self.ignore_index, reduction="none")
