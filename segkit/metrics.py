"""Segmentation metrics as pure functions on tensors, one value per image.

Per-image values (then mean ± std over images) are what the lab report quotes; they weigh a
small pet as much as a large one. Labels are (B, H, W) integer tensors; pixels equal to
``ignore_index`` in the target are left out of every count.
"""
from typing import Tuple

import torch

__all__ = ["predict_labels", "confusion_counts", "dice_per_image", "iou_per_image"]


def predict_labels(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, C, H, W) logits → (B, H, W) labels: sigmoid > threshold for C = 1, argmax otherwise."""
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0].float()) > threshold).long()
    return logits.argmax(dim=1)


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                     ignore_index: int = 255) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """True-positive, false-positive and false-negative pixel counts, each (B, K).

    K is 1 (the foreground) for binary labels and ``num_classes`` otherwise.
    """
    valid = target != ignore_index
    classes = [1] if num_classes == 1 else range(num_classes)
    tp, fp, fn = [], [], []
    for c in classes:
        p = (pred == c) & valid
        g = (target == c) & valid
        tp.append((p & g).flatten(1).sum(1))
        fp.append((p & ~g).flatten(1).sum(1))
        fn.append((~p & g).flatten(1).sum(1))
    return torch.stack(tp, 1).double(), torch.stack(fp, 1).double(), torch.stack(fn, 1).double()


def _mean_over_present(score: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Average class scores over classes present in prediction or target; 1 when none are."""
    count = present.sum(1)
    total = (score * present).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))


def dice_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                   ignore_index: int = 255) -> torch.Tensor:
    """2|P∩G| / (|P| + |G|) per image; an image with empty prediction and target scores 1."""
    tp, fp, fn = confusion_counts(pred, target, num_classes, ignore_index)
    denom = 2 * tp + fp + fn
    return _mean_over_present(2 * tp / denom.clamp_min(1), denom > 0)


def iou_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                  ignore_index: int = 255) -> torch.Tensor:
    """|P∩G| / |P∪G| per image; an image with empty prediction and target scores 1."""
    tp, fp, fn = confusion_counts(pred, target, num_classes, ignore_index)
    denom = tp + fp + fn
    return _mean_over_present(tp / denom.clamp_min(1), denom > 0)
