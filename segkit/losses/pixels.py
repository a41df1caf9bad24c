"""Shared plumbing for losses: which pixels count, how much, and per-image reduction."""
from typing import Optional

import torch


def valid_mask(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Float (B, H, W) mask of labelled pixels."""
    return (target != ignore_index).float()


def labels_or_zero(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Long labels with ignored pixels read as class 0, so they can index; mask them afterwards."""
    return torch.where(target == ignore_index, torch.zeros_like(target), target).long()


def class_weight_map(target: torch.Tensor, ignore_index: int, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """Float (B, H, W) weight of each pixel: w[label] where labelled, 0 where ignored.

    Without ``weight`` this is ``valid_mask``, so the means below stay plain means over
    labelled pixels; with it they become PyTorch's weighted mean Σ wᵢ·lᵢ / Σ wᵢ.
    """
    valid = valid_mask(target, ignore_index)
    if weight is None:
        return valid
    return weight[labels_or_zero(target, ignore_index)] * valid


def _normalise(total: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """total / weight, 0 where nothing was weighed (no labelled or no weighted pixel)."""
    return total / torch.where(weight > 0, weight, torch.ones_like(weight))


def per_image_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of (B, H, W) ``values`` per image (``weight``: a mask or ``class_weight_map``)."""
    dims = tuple(range(1, values.dim()))
    return _normalise((values * weight).sum(dims), weight.sum(dims))


def batch_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the batch (with a 0/1 mask: what nn.BCEWithLogitsLoss gives unmasked)."""
    return _normalise((values * weight).sum(), weight.sum())


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) class probabilities: sigmoid for one channel (as foreground), softmax else."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def true_class_probability(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(B, H, W) probability the model gives each pixel's own label (ignored pixels: arbitrary).

    One channel: sigmoid(x) for label 1 and 1 − sigmoid(x) for any other label, matching how
    ``bce`` reads a binary mask.
    """
    probs = probabilities(logits)
    if logits.shape[1] == 1:
        fg = probs[:, 0]
        return torch.where(target == 1, fg, 1.0 - fg)
    return probs.gather(1, labels_or_zero(target, ignore_index).unsqueeze(1)).squeeze(1)


def one_hot(target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(B, C, H, W) float one-hot of labels; ignored pixels are all-zero rows."""
    if num_classes == 1:
        return (target == 1).float().unsqueeze(1)
    out = torch.nn.functional.one_hot(labels_or_zero(target, ignore_index), num_classes).permute(0, 3, 1, 2).float()
    return out * (target != ignore_index).unsqueeze(1).float()
