"""Lovász losses (Berman et al., 2018): convex surrogates that optimise IoU directly.

Binary models get the Lovász hinge on the logits, multi-class models the Lovász-softmax on
the probabilities (averaged over the classes present), following the authors' reference code.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES
from .pixels import probabilities


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss for errors sorted high to low."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász hinge of 1-D ``logits`` against 0/1 ``labels`` (already without ignored pixels)."""
    if labels.numel() == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm]))


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax of (N, C) ``probs`` against N labels, averaged over the classes present."""
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probs.sum() * 0.0


@LOSSES.register(name="lovasz")
class LovaszLoss(nn.Module):
    """Lovász hinge (one channel) or Lovász-softmax (C > 1) over labelled pixels.

    The batch form treats the batch as one big image (the authors' ``per_image=False``);
    ``per_image`` computes it image by image, which is closer to per-image mean IoU.
    """

    def __init__(self, ignore_index: int = 255):
        super().__init__()
        self.ignore_index = ignore_index

    def _flat(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (B, C, H, W) ``logits`` against (B, H, W) labels, all pixels taken as one set."""
        c = logits.shape[1]
        logits = logits.float().permute(0, 2, 3, 1).reshape(-1, c)
        labels = target.reshape(-1)
        keep = labels != self.ignore_index
        logits, labels = logits[keep], labels[keep]
        if c == 1:
            return lovasz_hinge_flat(logits[:, 0], (labels == 1).float())
        return lovasz_softmax_flat(probabilities(logits[:, :, None, None])[:, :, 0, 0], labels.long())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._flat(logits, target)

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._flat(logits[i:i + 1], target[i:i + 1]) for i in range(logits.shape[0])])
