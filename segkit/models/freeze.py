"""Freezing for fine-tuning: ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.BACKBONE.FROZEN_BN``.

Stages are read off the encoder's own output, so every backbone gets the same rule without
declaring its layers: ``FREEZE_AT = N`` freezes every backbone parameter that the first N
returned feature maps depend on (found through autograd on one small dry run). For ResNet34
(maps: stem, layer1..layer4) 1 freezes the stem, 2 the stem and layer1 (detectron2's
convention), 5 the whole encoder; 0 freezes nothing. BatchNorm layers whose parameters are
all frozen also stop updating their running statistics, or the frozen features would drift.
A backbone may define ``freeze(n)`` to do this its own way.
"""
from typing import List

import torch
from torch import nn

__all__ = ["freeze_stages", "frozen_bn_modules", "BN_TYPES"]

BN_TYPES = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)


def _dry_run_size(backbone: nn.Module) -> int:
    return max(64, 2 * int(max(getattr(backbone, "strides", [32]))))


def _params_feeding(backbone: nn.Module, n: int, in_channels: int) -> List[nn.Parameter]:
    """Parameters on the autograd path to any of the first ``n`` feature maps."""
    params = [p for p in backbone.parameters() if p.requires_grad]
    was_training = backbone.training
    backbone.eval()  # no running-stat updates from the dry run
    try:
        size = _dry_run_size(backbone)
        with torch.enable_grad():
            feats = backbone(torch.zeros(1, in_channels, size, size))
            target = sum(f.float().sum() for f in list(feats)[:n])
            grads = torch.autograd.grad(target, params, allow_unused=True)
    finally:
        backbone.train(was_training)
    return [p for p, g in zip(params, grads) if g is not None]


def freeze_stages(backbone: nn.Module, freeze_at: int, in_channels: int = 3) -> List[nn.Parameter]:
    """Set ``requires_grad=False`` on what produces the first ``freeze_at`` maps; return those params."""
    n_maps = len(backbone.out_channels)
    if not isinstance(freeze_at, int) or isinstance(freeze_at, bool) or not 0 <= freeze_at <= n_maps:
        raise ValueError(f"MODEL.BACKBONE.FREEZE_AT must be an int from 0 (nothing) to {n_maps} (the whole "
                         f"encoder: it returns {n_maps} feature maps), got {freeze_at!r}")
    if freeze_at == 0:
        return []
    if hasattr(backbone, "freeze"):
        return backbone.freeze(freeze_at)
    frozen = _params_feeding(backbone, freeze_at, in_channels)
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def frozen_bn_modules(backbone: nn.Module, all_bn: bool) -> List[nn.Module]:
    """BatchNorm layers to keep in eval mode: all of them (FROZEN_BN), else those fully frozen."""
    mods = []
    for m in backbone.modules():
        if not isinstance(m, BN_TYPES):
            continue
        params = list(m.parameters(recurse=False))
        if all_bn or (params and not any(p.requires_grad for p in params)):
            for p in params:
                p.requires_grad_(False)
            mods.append(m)
    return mods
