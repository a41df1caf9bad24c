"""Test-time augmentation as a model wrapper, so evaluation and the Predictor share it unchanged.

The wrapped model sees each batch flipped and/or rescaled; the logits are mapped back to the
batch's own size and orientation and averaged (the ``mean`` merge of ttach). Averaging logits
rather than probabilities keeps the output a logit map, so the loss and ``predict_labels``
work on it as on any model's output.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .precision import main_output

__all__ = ["TTAWrapper", "wrap_tta"]

# Scaled inputs are rounded to a multiple of this, the deepest stride of the encoders segkit builds.
SIZE_DIVISOR = 32


class TTAWrapper(nn.Module):
    """Average the model's logits over ``scales`` × (identity, horizontal flip if ``flip``)."""

    def __init__(self, model: nn.Module, flip: bool = True, scales: Sequence[float] = (1.0,)):
        super().__init__()
        scales = [float(s) for s in scales] or [1.0]
        if any(s <= 0 for s in scales):
            raise ValueError(f"TEST.TTA.SCALES {scales}: every scale must be > 0")
        self.model, self.flip, self.scales = model, bool(flip), scales

    def _scaled(self, images: torch.Tensor, scale: float) -> torch.Tensor:
        h, w = images.shape[-2:]
        if scale == 1.0:
            size = (h, w)
        else:
            size = tuple(max(SIZE_DIVISOR, int(round(d * scale / SIZE_DIVISOR)) * SIZE_DIVISOR) for d in (h, w))
        x = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        views = [x, x.flip(-1)] if self.flip else [x]
        total = None
        for i, view in enumerate(views):
            out = main_output(self.model(view)).float()
            if i == 1:
                out = out.flip(-1)
            total = out if total is None else total + out
        total = total / len(views)
        if total.shape[-2:] != (h, w):
            total = F.interpolate(total, size=(h, w), mode="bilinear", align_corners=False)
        return total

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return sum(self._scaled(images, s) for s in self.scales) / len(self.scales)


def wrap_tta(model: nn.Module, flip: bool, scales: Sequence[float]) -> nn.Module:
    """``model`` itself when no augmentation is asked for, else a :class:`TTAWrapper`."""
    scales = [float(s) for s in scales] or [1.0]
    if not flip and scales == [1.0]:
        return model
    return TTAWrapper(model, flip, scales)
