"""Loading experiment configs: defaults ← ``_BASE_`` chain ← the file ← command-line overrides.

The merge checks every key against the defaults (component nodes accept free keyword
arguments), so a typo fails at start-up with the nearest valid key rather than being
silently ignored hours into a run; then every value with a valid range is checked against it
(``validate.RULES``), so a value that cannot train fails before anything runs, not an epoch in.
"""
from __future__ import annotations

import ast
import difflib
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence

import yaml
from yacs.config import CfgNode as CN

from ..utils.files import atomic_write_text
from .catalog import UnknownConfigError, config_dir, config_names, resolve_config
from .defaults import INT_OR_PAIR_KEYS, get_default_config
from .validate import config_problems

__all__ = ["CN", "ConfigError", "get_default_config", "load_config", "merge_dict", "merge_overrides",
           "dump_config", "flatten_config", "parse_value", "validate_config", "resolve_config", "config_names",
           "config_dir", "UnknownConfigError"]

BASE_KEY = "_BASE_"
# Larger than any config: a file this big is something else given in its place.
MAX_CONFIG_BYTES = 4 * 2**20
_KEY_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class ConfigError(ValueError):
    """A config file or override that does not fit the defaults' schema."""


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise ConfigError(f"key '{key}' appears twice in one mapping (line {key_node.start_mark.line + 1}); "
                                  "YAML would silently keep only the last one: merge them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: str, what: Optional[str] = None) -> dict:
    what = what or f"Config file '{path}'"
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} is a folder, not a YAML file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} does not exist")
    if os.path.getsize(path) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} is {os.path.getsize(path) / 2**20:.0f} MiB: far too large for a YAML config "
                          f"(is it a dataset or checkpoint file?)")
    with open(path, "rb") as f:
        raw = f.read()
    if b"\0" in raw:
        kind = "a zip archive such as a torch checkpoint" if raw.startswith(b"PK") else "a binary file"
        raise ConfigError(f"{what} is {kind}, not a YAML config (the config comes first, e.g. "
                          f"segkit test CONFIG CHECKPOINT)")
    try:
        data = yaml.load(raw.decode("utf-8-sig"), Loader=_StrictLoader)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} is not UTF-8 text (byte {e.start}: {e.reason})") from e
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} is not valid YAML: {' '.join(str(e).split())}") from e
    if data is None:
        raise ConfigError(f"{what} is an empty config (nothing but blanks or comments); it would train with "
                          f"every default. Give at least one key, or write {{}} to mean the defaults")
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a mapping at top level, got {type(data).__name__} "
                          f"{_short(data)}")
    return data


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


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
    return _load_with_base(os.path.abspath(path), list(_seen or []))


def _load_with_base(path: str, seen: List[str], what: Optional[str] = None) -> dict:
    if path in seen:
        raise ConfigError(f"_BASE_ cycle: {' -> '.join(seen + [path])}")
    data = _read_yaml(path, what)
    if BASE_KEY not in data:
        return data
    bases = data.pop(BASE_KEY)
    items = [bases] if isinstance(bases, str) else bases
    if not isinstance(items, list) or not all(isinstance(b, str) and b.strip() for b in items):
        raise ConfigError(f"Config file '{path}': _BASE_ must be a path or a list of paths (relative to this "
                          f"file), got {_type_name(bases)} {_short(bases)}")
    merged: dict = {}
    for base in items:
        base_path = os.path.join(os.path.dirname(path), os.path.expanduser(base))
        merged = _merge_raw(merged, _load_with_base(os.path.abspath(base_path), seen + [path],
                                                    f"_BASE_ '{base}' of config file '{path}' ('{base_path}')"))
    return _merge_raw(merged, data)


def _is_component(node: Any) -> bool:
    return isinstance(node, CN) and node.is_new_allowed() and "NAME" in node


def _type_name(v: Any) -> str:
    return "null (an empty value)" if v is None else type(v).__name__


def _check_type(full_key: str, old: Any, new: Any, where: str) -> Any:
    """Accept ``new`` for a key whose default is ``old``, converting lossless cases only."""
    if full_key in INT_OR_PAIR_KEYS and isinstance(new, (int, list, tuple)) and not isinstance(new, bool):
        return list(new) if isinstance(new, tuple) else new  # the range check (validate) sees the rest
    if old is None or type(old) is type(new):
        return new
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        try:
            return float(new)
        except OverflowError:
            raise ConfigError(f"{where}: {full_key} is {_short(new)}, too large for a float") from None
    if isinstance(old, float) and isinstance(new, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string; it is meant as a number
            return float(new)
        except ValueError:
            pass
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return type(old)(new)
    hint = " (quote it to give text)" if isinstance(old, str) and isinstance(new, (int, float, bool)) else ""
    raise ConfigError(f"{where}: {full_key} expects {_type_name(old)} (like its current value {old!r}), "
                      f"got {_type_name(new)}{'' if new is None else ' ' + _short(new)}{hint}")


def _unknown_key(full_key: str, key: str, node: CN, where: str) -> ConfigError:
    same = [k for k in node.keys() if str(k).upper() == str(key).upper()]  # keys are upper case
    close = same or difflib.get_close_matches(str(key), list(node.keys()), n=1, cutoff=0.5)
    prefix = full_key[: -len(key)]
    hint = f" Did you mean '{prefix}{close[0]}'?" if close else f" Valid keys here: {', '.join(sorted(node.keys()))}"
    return ConfigError(f"{where}: unknown config key '{full_key}'.{hint}")


def merge_dict(cfg: CN, data: dict, where: str = "config", _prefix: str = "") -> CN:
    """Merge a plain mapping into ``cfg`` in place, checking keys and types against it."""
    for key, value in data.items():
        full = f"{_prefix}{key}"
        if key == BASE_KEY:
            place = "at the top level of a config file" if _prefix else "in config files"
            raise ConfigError(f"{where}: _BASE_ can only be used {place}")
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
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError):
        return text
    return value if not isinstance(value, str) else text


def _current(cfg: CN, parts: Sequence[str]) -> Any:
    node: Any = cfg
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def merge_overrides(cfg: CN, overrides: Sequence[str]) -> CN:
    """Apply ``KEY VALUE`` pairs (detectron2 style), e.g. ``SOLVER.EPOCHS 10``."""
    overrides = list(overrides or [])
    glued = next((t for t in overrides if isinstance(t, str) and "=" in t and _KEY_TEXT.fullmatch(t.split("=")[0])),
                 None)
    if glued is not None and (len(overrides) % 2 or glued in overrides[0::2]):
        key, _, value = glued.partition("=")
        raise ConfigError(f"command line: overrides are KEY VALUE pairs separated by a space: write "
                          f"'{key} {value}', not '{glued}'")
    if len(overrides) % 2:
        raise ConfigError(f"Overrides come in KEY VALUE pairs; got an odd number: {overrides}")
    for key, text in zip(overrides[0::2], overrides[1::2]):
        if not isinstance(key, str) or not _KEY_TEXT.fullmatch(key):
            raise ConfigError(f"command line: {key!r} is not a config key (overrides are KEY VALUE pairs, e.g. "
                              f"SOLVER.EPOCHS 10)")
        if key != key.upper() and _current(cfg, key.split(".")) is None and _current(cfg, key.upper().split(".")) is not None:
            raise ConfigError(f"command line: unknown config key '{key}'. Did you mean '{key.upper()}'? (keys are "
                              f"upper case)")
        *parents, leaf = key.split(".")
        value = parse_value(text)
        if isinstance(_current(cfg, key.split(".")), str) and (isinstance(value, (int, float, bool))
                                                              or (value is None and text == "")):
            value = str(text)  # a text key keeps what was typed: DATA.ROOT 2024 is a folder named 2024, "" is ""
        nested: dict = {leaf: value}
        for p in reversed(parents):
            nested = {p: nested}
        merge_dict(cfg, nested, where="command line")
    return cfg


def load_config(path: Optional[str] = None, overrides: Iterable[str] = (), freeze: bool = True,
                validate: bool = True) -> CN:
    """Defaults, then ``path`` with its ``_BASE_`` chain, then ``overrides``; checked against the
    ranges of ``validate.RULES`` (unless ``validate`` is False) and frozen by default. ``path`` is
    a file or the name of a packaged config (``quickstart``, ``report/lr``: see ``catalog``)."""
    cfg = get_default_config()
    overrides = list(overrides)
    if path:
        path = resolve_config(path)
        merge_dict(cfg, load_yaml_with_base(path), where=f"config file '{path}'")
    merge_overrides(cfg, overrides)
    if validate:
        given = [k for k in overrides[0::2] if isinstance(k, str)]
        validate_config(cfg, where=f"config file '{path}'" if path else "config", given=given)
    if freeze:
        cfg.freeze()
    return cfg


def validate_config(cfg: CN, where: str = "config", given: Sequence[str] = ()) -> None:
    """Raise one ConfigError naming every value of ``cfg`` outside its range (see ``validate``).
    Keys under one of ``given`` (the command line's) are reported as the command line's."""
    def under(a: str, b: str) -> bool:
        return a == b or a.startswith((b + ".", b + "["))

    parts: List[str] = []
    last = None
    for keys, message in config_problems(cfg):  # "where: problem; problem; other where: problem"
        origin = "command line" if any(under(k, g) or under(g, k) for k in keys for g in given) else where
        parts.append(message if origin == last else f"{origin}: {message}")
        last = origin
    if parts:
        raise ConfigError("; ".join(parts))


def flatten_config(node: Optional[dict], prefix: str = "", keep_empty: bool = True) -> Dict[str, Any]:
    """``{"SOLVER": {"BASE_LR": 1e-4}}`` -> ``{"SOLVER.BASE_LR": 1e-4}``, keys as the command line
    writes them. An empty mapping is a value of its own (``keep_empty``) or stands for no keys."""
    out: Dict[str, Any] = {}
    for key, value in (node or {}).items():
        if isinstance(value, dict) and (value or not keep_empty):
            out.update(flatten_config(value, f"{prefix}{key}.", keep_empty))
        else:
            out[f"{prefix}{key}"] = value
    return out


def dump_config(cfg: CN, path: str) -> None:
    """Write the merged config where the run's outputs live, so a run can be repeated (atomically:
    ``segkit test`` and sweeps read it back)."""
    atomic_write_text(path, cfg.dump())
