"""Does a config describe the model a checkpoint holds? The one comparison testing, inference
and export make before they load weights.

A checkpoint written by training carries the merged config it was trained with (``ckpt["config"]``,
see ``checkpoint.make_checkpoint``). Testing or serving it with another INPUT.SIZE, other
INPUT.MEAN/STD or other MODEL settings would run without a word and give other numbers, so
the keys that change what the model computes are compared and a difference is refused with
each key, both values and the fix. Keys that only say where data and outputs are or how to
train (DATA.*, OUTPUT_DIR, SOLVER.*, TEST.*, LOSS.*, HOOKS) are free to differ.
"""
from __future__ import annotations

import os
import shlex
from typing import Any, List, Optional, Tuple

import yaml

from ..config import flatten_config, get_default_config
from .checkpoint import CheckpointError, load_checkpoint

__all__ = ["MODEL_KEYS", "NOT_MODEL_KEYS", "config_differences", "check_checkpoint_config"]

# Keys (and the prefixes of keys) that change what the model computes from an image.
MODEL_KEYS = ("MODEL", "INPUT.SIZE", "INPUT.MEAN", "INPUT.STD", "INPUT.TEST_TRANSFORMS")
# MODEL keys that only matter while training or only choose a memory layout.
NOT_MODEL_KEYS = ("MODEL.WEIGHTS", "MODEL.BACKBONE.WEIGHTS", "MODEL.BACKBONE.FREEZE_AT",
                  "MODEL.BACKBONE.FROZEN_BN", "MODEL.CHANNELS_LAST", "MODEL.SYNC_BN")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()  # a key one config does not have


def _model_defining(key: str) -> bool:
    def under(prefix: str) -> bool:
        return key == prefix or key.startswith(prefix + ".")

    return any(under(p) for p in MODEL_KEYS) and not any(under(p) for p in NOT_MODEL_KEYS)


def _as_plain(cfg) -> dict:
    """A CfgNode (or a YAML dump, or a dict) as plain YAML data, so both sides compare alike."""
    if isinstance(cfg, str):
        data = yaml.safe_load(cfg)
    elif hasattr(cfg, "dump"):
        data = yaml.safe_load(cfg.dump())
    else:
        data = yaml.safe_load(yaml.safe_dump(cfg))
    return data if isinstance(data, dict) else {}


def config_differences(cfg, saved) -> List[Tuple[str, Any, Any]]:
    """(key, checkpoint value, config value) for each model-defining key on which ``cfg`` and the
    checkpoint's ``saved`` config differ; ``UNSET`` stands for a key one side does not have.

    A key the checkpoint lacks while the config holds its default is not a difference: the
    checkpoint was written before that key existed.
    """
    ours, theirs = (flatten_config(_as_plain(c), keep_empty=False) for c in (cfg, saved))
    defaults = flatten_config(_as_plain(get_default_config()), keep_empty=False)
    diffs = []
    def order(key: str):  # a component's NAME before its arguments
        parent, _, leaf = key.rpartition(".")
        return parent, leaf != "NAME", leaf

    for key in sorted(set(ours) | set(theirs), key=order):
        if not _model_defining(key):
            continue
        mine, saved_value = ours.get(key, UNSET), theirs.get(key, UNSET)
        if saved_value is UNSET and key in defaults and mine == defaults[key]:
            continue
        if mine != saved_value:
            diffs.append((key, saved_value, mine))
    return diffs


def _override_word(value: Any) -> str:
    return shlex.quote(value if isinstance(value, str) else repr(value))


def _own_config(checkpoint: str, saved: dict) -> Optional[str]:
    """The config.yaml training wrote for this checkpoint, where it can be found."""
    candidates = [os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.yaml")]
    if saved.get("OUTPUT_DIR"):
        candidates.append(os.path.join(str(saved["OUTPUT_DIR"]), "config.yaml"))
    return next((c for c in candidates if os.path.isfile(c)), None)


def check_checkpoint_config(cfg, checkpoint: str, ckpt: Optional[dict] = None) -> None:
    """Refuse ``checkpoint`` when the config it was trained with differs from ``cfg`` on a key
    that changes what the model computes (see MODEL_KEYS); the message names each key with both
    values and the fix. Checkpoints without a config (a bare state dict, an old file) pass."""
    if ckpt is None:
        ckpt = load_checkpoint(checkpoint, mmap=True)  # the config only: tensors are not read in
    text = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not text or not isinstance(text, str):
        return
    try:
        saved = _as_plain(text)
    except yaml.YAMLError:
        return  # not a config segkit wrote; the weights check still applies
    diffs = config_differences(cfg, saved)
    if not diffs:
        return
    def shown(value: Any) -> str:
        return "not set" if value is UNSET else repr(value)

    listed = "; ".join(f"{key} is {shown(saved_value)} in the checkpoint but {shown(mine)} in the config"
                       for key, saved_value, mine in diffs)
    overrides = " ".join(f"{key} {_override_word(v)}" for key, v, _ in diffs if v is not UNSET)
    own = _own_config(checkpoint, saved)
    fixes = [f"use the run's own config ({own})" if own else
             "use the config.yaml the training run wrote beside its checkpoints"]
    if overrides:
        fixes.append(f"add the checkpoint's values as overrides: {overrides}")
    what = "ONNX model" if str(checkpoint).endswith(".onnx") else "Checkpoint"
    raise CheckpointError(f"{what} '{checkpoint}' was trained with other model settings than the config "
                          f"gives: {listed}. These keys change what the model computes; "
                          f"{', or '.join(fixes)}")

