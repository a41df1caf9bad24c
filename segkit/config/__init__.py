"""Loading experiment configs: defaults ← ``_BASE_`` chain ← the file ← command-line overrides.

The merge checks every key against the defaults (component nodes accept free keyword
arguments), so a typo fails at start-up with the nearest valid key rather than being
silently ignored hours into a run.
"""
from __future__ import annotations

import ast
import difflib
import os
from typing import Any, Iterable, List, Optional, Sequence

import yaml
from yacs.config import CfgNode as CN

from ..utils.files import atomic_write_text
from .defaults import get_default_config

__all__ = ["CN", "ConfigError", "get_default_config", "load_config", "merge_dict", "merge_overrides",
           "dump_config", "parse_value"]

BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override that does not fit the defaults' schema."""


def _read_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file '{path}' is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping at top level, got {type(data).__name__}")
    return data


def _merge_raw(base: dict, child: dict) -> dict:
    """Child wins; nested mappings merge; a component whose NAME changes is replaced whole."""
    out = dict(base)
    for k, v in child.items():
        b = out.get(k)
        if isinstance(v, dict) and isinstance(b, dict) and not _renames(b, v):
            out[k] = _merge_raw(b, v)
        else:
            out[k] = v
    return out


def _renames(old: dict, new: dict) -> bool:
    return "NAME" in old and "NAME" in new and old["NAME"] != new["NAME"]


def load_yaml_with_base(path: str, _seen: Optional[List[str]] = None) -> dict:
    """Read ``path`` and the files its ``_BASE_`` names (a path or a list, relative to it)."""
    path = os.path.abspath(path)
    seen = list(_seen or [])
    if path in seen:
        raise ConfigError(f"_BASE_ cycle: {' -> '.join(seen + [path])}")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else list(bases):
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        merged = _merge_raw(merged, load_yaml_with_base(base_path, seen + [path]))
    return _merge_raw(merged, data)


def _is_component(node: Any) -> bool:
    return isinstance(node, CN) and node.is_new_allowed() and "NAME" in node


def _type_name(v: Any) -> str:
    return type(v).__name__


def _check_type(full_key: str, old: Any, new: Any, where: str) -> Any:
    """Accept ``new`` for a key whose default is ``old``, converting lossless cases only."""
    if old is None or new is None or type(old) is type(new):
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    if isinstance(old, float) and isinstance(new, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string; it is meant as a number
            return float(new)
        except ValueError:
            pass
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return type(old)(new)
    raise ConfigError(f"{where}: {full_key} expects {_type_name(old)} (like its current value {old!r}), "
                      f"got {_type_name(new)} {new!r}")


def _unknown_key(full_key: str, key: str, node: CN, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(node.keys()), n=1, cutoff=0.5)
    prefix = full_key[: -len(key)]
    hint = f" Did you mean '{prefix}{close[0]}'?" if close else f" Valid keys here: {', '.join(sorted(node.keys()))}"
    return ConfigError(f"{where}: unknown config key '{full_key}'.{hint}")


def merge_dict(cfg: CN, data: dict, where: str = "config", _prefix: str = "") -> CN:
    """Merge a plain mapping into ``cfg`` in place, checking keys and types against it."""
    for key, value in data.items():
        full = f"{_prefix}{key}"
        if key == BASE_KEY:
            raise ConfigError(f"{where}: _BASE_ can only be used in config files")
        if key not in cfg:
            if cfg.is_new_allowed():
                cfg[key] = CN(value, new_allowed=True) if isinstance(value, dict) else value
                continue
            raise _unknown_key(full, key, cfg, where)
        old = cfg[key]
        if isinstance(old, CN):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {full} is a section and expects a mapping, got "
                                  f"{_type_name(value)} {value!r}")
            if _is_component(old) and "NAME" in value and value["NAME"] != old.NAME:
                old.clear()
            merge_dict(old, value, where, full + ".")
        else:
            cfg[key] = _check_type(full, old, value, where)
    return cfg


def parse_value(text: Any) -> Any:
    """Command-line values are Python/YAML literals when they parse, else plain strings."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if not isinstance(value, str) else text


def merge_overrides(cfg: CN, overrides: Sequence[str]) -> CN:
    """Apply ``KEY VALUE`` pairs (detectron2 style), e.g. ``SOLVER.EPOCHS 10``."""
    overrides = list(overrides or [])
    if len(overrides) % 2:
        raise ConfigError(f"Overrides come in KEY VALUE pairs; got an odd number: {overrides}")
    for key, text in zip(overrides[0::2], overrides[1::2]):
        *parents, leaf = key.split(".")
        nested: dict = {leaf: parse_value(text)}
        for p in reversed(parents):
            nested = {p: nested}
        merge_dict(cfg, nested, where="command line")
    return cfg


def load_config(path: Optional[str] = None, overrides: Iterable[str] = (), freeze: bool = True) -> CN:
    """Defaults, then ``path`` with its ``_BASE_`` chain, then ``overrides``; frozen by default."""
    cfg = get_default_config()
    if path:
        merge_dict(cfg, load_yaml_with_base(path), where=f"config file '{path}'")
    merge_overrides(cfg, list(overrides))
    if freeze:
        cfg.freeze()
    return cfg


def dump_config(cfg: CN, path: str) -> None:
    """Write the merged config where the run's outputs live, so a run can be repeated (atomically:
    ``segkit test`` and sweeps read it back)."""
    atomic_write_text(path, cfg.dump())
