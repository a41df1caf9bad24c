"""One evaluation path for the per-epoch validation hook and tools/test.py.

Loss and metrics are computed image by image and summarised as mean ± std over images, the
form the lab report uses; the standard deviation is the population one (ddof 0).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch

from ..metrics import dice_per_image, iou_per_image, predict_labels
from ..losses._pixels import probabilities
from .precision import forward_batch

__all__ = ["Evaluator", "summarize"]


def summarize(values: Dict[str, List[float]]) -> Dict[str, float]:
    """{'dice': [...]} → {'dice_mean': .., 'dice_std': ..} plus 'n' (images)."""
    out: Dict[str, float] = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)
        out[f"{key}_mean"] = float(arr.mean()) if arr.size else float("nan")
        out[f"{key}_std"] = float(arr.std()) if arr.size else float("nan")
    out["n"] = len(next(iter(values.values()), []))
    return out


class Evaluator:
    """Runs a model over a loader and returns per-image metrics and their summary."""

    def __init__(self, loss_fn, num_classes: int = 1, ignore_index: int = 255, threshold: float = 0.5,
                 amp_dtype=None, channels_last: bool = False, keep_first: int = 4):
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.keep_first = keep_first
        self.records: List[dict] = []
        self.first_batch: Optional[Dict[str, torch.Tensor]] = None

    @torch.inference_mode()
    def run(self, model: torch.nn.Module, loader, device: torch.device) -> Dict[str, float]:
        was_training = model.training
        model.eval()
        self.records, self.first_batch = [], None
        try:
            for batch in loader:
                self._run_batch(model, batch, device)
        finally:
            model.train(was_training)
        per_key = {k: [r[k] for r in self.records] for k in ("loss", "dice", "iou")}
        return summarize(per_key)

    def _run_batch(self, model, batch, device) -> None:
        images, masks, logits = forward_batch(model, batch, device, self.amp_dtype, self.channels_last)
        losses = self.loss_fn.per_image(logits, masks)
        pred = predict_labels(logits, self.threshold)
        dice = dice_per_image(pred, masks, self.num_classes, self.ignore_index)
        iou = iou_per_image(pred, masks, self.num_classes, self.ignore_index)
        for i, name in enumerate(batch["name"]):
            self.records.append({"name": name, "loss": float(losses[i]), "dice": float(dice[i]),
                                 "iou": float(iou[i])})
        if self.first_batch is None and self.keep_first:
            k = self.keep_first
            self.first_batch = {"image": images[:k].float().cpu(), "mask": masks[:k].cpu(),
                                "prob": probabilities(logits[:k]).cpu()}
