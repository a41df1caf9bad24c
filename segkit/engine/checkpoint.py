"""Saving and loading checkpoints so that a kill mid-save never costs the last good file.

Files are written through ``segkit.utils.files.atomic_write`` (temporary file, fsync, rename).
Loading uses
``weights_only=True``: a checkpoint holds tensors and plain data, never code to run.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

import torch

from .. import __version__
from ..models.weights import compare_state_dicts
from ..utils.files import atomic_copy, atomic_write

__all__ = ["atomic_save", "atomic_copy", "load_checkpoint", "load_model_weights", "CheckpointError", "unwrap",
           "non_finite_keys"]


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


def load_checkpoint(path: str, map_location: Any = "cpu", mmap: bool = False) -> Dict[str, Any]:
    """The checkpoint's dict. ``mmap``: map the tensors instead of reading them in (cheap when only
    the config or the state is wanted); files torch cannot map are read in whole."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"Checkpoint '{path}' is a folder, not a checkpoint file (best.pth or last.pth in it?)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"Checkpoint '{path}' is an empty file (0 bytes): a copy or save that never finished")
    try:
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap or None)
        except Exception:
            if not mmap:
                raise
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or a pickle with code in it
        raise CheckpointError(f"Checkpoint '{path}' could not be read safely: {_unreadable(path, e)}") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"Checkpoint '{path}' holds a {type(ckpt).__name__}, expected a dict")
    state = ckpt.get("model", ckpt) if not mmap else {}  # mmap: the config is wanted, not the weights
    bad = non_finite_keys(state)
    if bad:
        raise CheckpointError(f"Checkpoint '{path}' holds non-finite weights (NaN or inf) in {len(bad)} tensor(s), "
                              f"e.g. {bad[:3]}: the run had diverged when it was saved; use an earlier checkpoint")
    return ckpt


def non_finite_keys(state: Dict[str, Any]) -> List[str]:
    """The keys of a state dict's floating-point tensors that hold a NaN or an infinity."""
    return [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]


def _unreadable(path: str, error: Exception) -> str:
    """What a file torch.load failed on is, in words, with torch's first line."""
    with open(path, "rb") as f:
        head = f.read(4096)
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # torch's messages are long and coloured: keep the gist
    lines = [ln.split("WeightsUnpickler error:")[-1].strip() for ln in text.splitlines() if ln.strip()]
    gist = next((ln for ln in lines if "Unsupported" in ln), lines[0] if lines else type(error).__name__)
    said = f" ({gist.split('. ')[0].rstrip('.')})"
    if head.startswith(b"PK"):
        if "weights only" in text.lower():
            return f"it holds Python objects besides tensors and plain data, which are never unpickled{said}"
        return f"it is a damaged or truncated torch checkpoint{said}"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "it is a text file, not a torch checkpoint (the config comes first: CONFIG CHECKPOINT)"
        except UnicodeDecodeError:
            pass
    return f"it is not a torch checkpoint (it starts with {head[:8]!r})"


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
