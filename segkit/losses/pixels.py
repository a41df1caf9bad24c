"""Shared plumbing for losses: which pixels count, and per-image reduction."""
import torch


def valid_mask(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Float (B, H, W) mask of labelled pixels."""
    return (target != ignore_index).float()


def per_image_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of (B, H, W) ``values`` over each image's labelled pixels; 0 where none are."""
    dims = tuple(range(1, values.dim()))
    return (values * valid).sum(dims) / valid.sum(dims).clamp_min(1.0)


def batch_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over every labelled pixel of the batch (what nn.BCEWithLogitsLoss gives unmasked)."""
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) class probabilities: sigmoid for one channel (as foreground), softmax else."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def one_hot(target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(B, C, H, W) float one-hot of labels; ignored pixels are all-zero rows."""
    if num_classes == 1:
        return (target == 1).float().unsqueeze(1)
    safe = torch.where(target == ignore_index, torch.zeros_like(target), target)
    out = torch.nn.functional.one_hot(safe.long(), num_classes).permute(0, 3, 1, 2).float()
    return out * (target != ignore_index).unsqueeze(1).float()
