"""Saving and loading checkpoints so that a kill mid-save never costs the last good file.

Files are written through ``segkit.utils.files.atomic_write`` (temporary file, fsync, rename).
Loading uses
``weights_only=True``: a checkpoint holds tensors and plain data, never code to run.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch

from .. import __version__
from ..models.weights import compare_state_dicts
from ..utils.files import atomic_copy, atomic_write

__all__ = ["atomic_save", "atomic_copy", "load_checkpoint", "load_model_weights", "CheckpointError", "unwrap"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    for attr in ("module", "_orig_mod"):
        while hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    return model


def atomic_save(obj: Dict[str, Any], path: str) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def make_checkpoint(model: torch.nn.Module, cfg, **state: Any) -> Dict[str, Any]:
    """The dict segkit saves: weights, the merged config, version and architecture, plus state."""
    bare = unwrap(model)
    return {
        "model": bare.state_dict(),
        "config": cfg.dump() if cfg is not None else "",
        "segkit_version": __version__,
        "arch": dict(getattr(bare, "arch", {})),
        **state,
    }


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or a pickle with code in it
        raise CheckpointError(f"Checkpoint '{path}' could not be read safely: {e}") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"Checkpoint '{path}' holds a {type(ckpt).__name__}, expected a dict")
    return ckpt


def load_model_weights(model: torch.nn.Module, path: str, ckpt: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Load ``path``'s weights into ``model``; a mismatch names both architectures and the keys."""
    ckpt = ckpt if ckpt is not None else load_checkpoint(path)
    state = ckpt.get("model", ckpt)
    bare = unwrap(model)
    own = bare.state_dict()
    missing, unexpected, shape = compare_state_dicts(own, state)
    if missing or unexpected or shape:
        theirs = ckpt.get("arch") or "unknown"
        detail = "; ".join(f"{label}: {keys[:5]}{' …' if len(keys) > 5 else ''}" for label, keys in
                           (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape)) if keys)
        raise CheckpointError(
            f"Checkpoint '{path}' (architecture {theirs}) does not fit the model being built "
            f"(architecture {dict(getattr(bare, 'arch', {})) or type(bare).__name__}): {detail}")
    bare.load_state_dict(state)
    return ckpt
