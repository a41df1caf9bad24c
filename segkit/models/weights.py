"""Loading a local file of pretrained weights into a backbone (``MODEL.BACKBONE.WEIGHTS``).

Offline machines cannot let torchvision or timm download ImageNet weights, but a state dict
saved elsewhere (``torch.save(torchvision.models.resnet34(weights=...).state_dict(), f)``, a
timm checkpoint, …) can be copied over. segkit's encoders keep torchvision's / timm's key
names, so loading is a key match: wrapper prefixes are stripped, the classifier head is
dropped, and anything else that does not fit is an error listing the keys.
"""
import os
from typing import Dict, List, Tuple

import torch
from torch import nn

__all__ = ["load_backbone_weights", "compare_state_dicts", "HEAD_PREFIXES"]

# Classification heads (torchvision, timm, Cadene) that an encoder never has.
HEAD_PREFIXES = ("fc.", "classifier.", "head.", "head_drop.", "conv_head.", "last_linear.", "AuxLogits.",
                 "aux_logits.")
# Prefixes that training wrappers add around the real keys.
WRAPPER_PREFIXES = ("module.", "model.", "backbone.", "encoder.")


def _read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MODEL.BACKBONE.WEIGHTS: '{path}' does not exist; expected a file saved with "
                                f"torch.save(model.state_dict(), path)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors have many types; the user only needs the file named
        raise ValueError(f"MODEL.BACKBONE.WEIGHTS: cannot read '{path}' as a torch state dict ({e})") from e
    for key in ("state_dict", "model", "model_state"):  # checkpoints that wrap the state dict
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"MODEL.BACKBONE.WEIGHTS: '{path}' holds a {type(obj).__name__}, not a state dict "
                         f"(a mapping of parameter names to tensors)")
    return obj


def _strip_wrappers(sd: Dict[str, torch.Tensor], own: set) -> Dict[str, torch.Tensor]:
    """Remove wrapper prefixes while that makes more keys match the backbone's own keys."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if sd and all(k.startswith(prefix) for k in sd) and not (own & set(sd)):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def compare_state_dicts(own: Dict[str, torch.Tensor], theirs: Dict[str, torch.Tensor]
                        ) -> Tuple[List[str], List[str], List[str]]:
    """Keys of ``own`` missing from ``theirs``, keys of ``theirs`` unknown to ``own``, and shared
    keys whose shapes differ: what every "does not fit" error lists (in each dict's order)."""
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    shape = [k for k in own if k in theirs and tuple(own[k].shape) != tuple(theirs[k].shape)]
    return missing, unexpected, shape


def _short(keys: List[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Copy the tensors in ``path`` into ``backbone``; every backbone tensor must be found.

    Backbones that wrap another module (the timm encoder) expose ``backbone_state_dict`` and
    ``load_backbone_state_dict`` so the file's keys need no wrapper prefix.
    """
    own_sd = backbone.backbone_state_dict() if hasattr(backbone, "backbone_state_dict") else backbone.state_dict()
    own = set(own_sd)
    sd = _strip_wrappers(_read_state_dict(path), own)
    sd = {k: v for k, v in sd.items() if not k.startswith(HEAD_PREFIXES) or k in own}
    missing, unexpected, shape_keys = compare_state_dicts(own_sd, sd)
    # BatchNorm's step counter is bookkeeping, not a weight; old torchvision files lack it.
    missing = sorted(k for k in missing if not k.endswith("num_batches_tracked"))
    unexpected = sorted(unexpected)
    shapes = sorted(f"{k} {tuple(sd[k].shape)} vs {tuple(own_sd[k].shape)}" for k in shape_keys)
    if missing or unexpected or shapes:
        parts = [f"missing keys: {_short(missing)}" if missing else "",
                 f"unexpected keys: {_short(unexpected)}" if unexpected else "",
                 f"shape mismatches (file vs model): {_short(shapes)}" if shapes else ""]
        raise ValueError(f"MODEL.BACKBONE.WEIGHTS: '{path}' does not fit backbone {type(backbone).__name__} "
                         f"({len(own)} tensors): " + "; ".join(p for p in parts if p))
    sd = {k: v for k, v in sd.items() if k in own}
    if hasattr(backbone, "load_backbone_state_dict"):
        backbone.load_backbone_state_dict(sd, strict=False)
    else:
        backbone.load_state_dict(sd, strict=False)
