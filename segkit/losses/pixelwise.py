"""Base of the per-pixel losses (bce, focal): a mean over labelled pixels, optionally class-weighted."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .class_weights import RULES
from .pixels import batch_mean, class_weight_map, per_image_mean

__all__ = ["PixelAveragedLoss", "check_class_weight"]


ClassWeight = Union[None, str, Sequence[float], torch.Tensor]


def check_class_weight(value: ClassWeight, term: str) -> Optional[Tuple[float, ...]]:
    """``class_weight`` as a tuple of floats, or a one-line ValueError saying what is wrong with it.

    A rule name is refused here rather than resolved, because only the training split's labels
    can resolve it and a loss term never sees them.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value in RULES:
            raise ValueError(f"{term}: class_weight {value!r} is a rule, not weights: it is resolved from the training "
                             f"split's labels by the trainer (build_loss(cfg, class_stats=...)); build the loss that "
                             f"way, or give one weight per class")
        raise ValueError(f"{term}: class_weight must be a list of weights >= 0, one per class, or one of "
                         f"{', '.join(RULES)}; got {value!r}")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().flatten().tolist()
    try:
        weights = tuple(float(w) for w in value)
    except (TypeError, ValueError):
        raise ValueError(f"{term}: class_weight must be a list of numbers, one per class; got {value!r}") from None
    bad = [w for w in weights if not math.isfinite(w) or w < 0]
    if bad or not weights:
        raise ValueError(f"{term}: class_weight must hold finite weights >= 0, one per class; got {list(weights)}")
    if not any(weights):
        raise ValueError(f"{term}: class_weight is all zeros, so no pixel would count; give some class a weight > 0")
    return weights


class PixelAveragedLoss(nn.Module):
    """A per-pixel loss averaged over labelled pixels: the plain mean, or with ``class_weight``
    PyTorch's weighted mean Σ w[yᵢ]·lᵢ / Σ w[yᵢ] (``nn.CrossEntropyLoss(weight=w)``).

    ``per_image`` takes the same mean image by image (0 where an image has no weighted labelled
    pixel). Subclasses give ``pixel_losses`` (unweighted, (B, H, W)); the weighting lives here
    so every such loss normalises the same way.
    """

    term = "loss"
    binary_weight_key = "POS_WEIGHT"  # what weighs a binary model's foreground instead of class_weight

    def __init__(self, ignore_index: int = 255, class_weight=None):
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weight = check_class_weight(class_weight, self.term)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_channels(self, channels: int) -> None:
        """Refuse options that do not fit the model's output, at the first call (C is known only then)."""
        if self.class_weight is None:
            return
        if channels == 1:
            raise ValueError(f"{self.term}: class_weight weighs the classes of a multi-class model, but this model has "
                             f"1 output channel (binary): weigh its foreground with {self.binary_weight_key} instead")
        if len(self.class_weight) != channels:
            raise ValueError(f"{self.term}: class_weight has {len(self.class_weight)} weights but the model has "
                             f"{channels} output channels (classes): give one weight per class")

    def pixel_weights(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check_channels(logits.shape[1])
        w = None if self.class_weight is None else torch.tensor(self.class_weight, device=logits.device)
        return class_weight_map(target, self.ignore_index, w)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return batch_mean(self.pixel_losses(logits, target), self.pixel_weights(logits, target))

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return per_image_mean(self.pixel_losses(logits, target), self.pixel_weights(logits, target))
