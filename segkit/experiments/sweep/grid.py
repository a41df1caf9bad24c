"""The grid itself: axes of values, the runs they multiply into, and each run's name and overrides.

Kept apart from files, manifests and child processes so the rules a sweep's runs follow (a
value means what it would as a command-line override; a run's folder name is readable, safe and
stable across re-runs; the command line beats the sweep file) can be read and tested alone.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

# The command line's own value parser, so a grid value means exactly what it would as an override.
from ...config import parse_value

__all__ = ["SweepError", "Sweep", "Run", "GROUP_DIRS", "DEFAULT_OUTPUT_ROOT", "split_values", "parse_grid_arg",
           "check_axis", "short_keys", "format_value", "run_name", "value_text", "expand", "split_settings",
           "run_picks", "run_overrides", "shadowed_overrides", "is_word"]

# Grid keys that pick a whole file from configs/_base_/<folder>/ instead of setting one value.
GROUP_DIRS = {"MODEL": "models", "SCHEDULE": "schedules", "AUGMENT": "augment", "DATASET": "datasets"}
DEFAULT_OUTPUT_ROOT = os.path.join("work_dirs", "sweeps")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_WORD = re.compile(r"[A-Za-z0-9_.+-]+")
_MAX_NAME = 160  # well under the 255 bytes file systems allow for one path component


class SweepError(ValueError):
    """A grid, sweep file or override that cannot make a sweep."""


def is_word(text: Any) -> bool:
    """One plain word (letters, digits, . _ + -): a sweep name, or a value naming a ``_base_`` file."""
    return isinstance(text, str) and bool(_WORD.fullmatch(text))


# --------------------------------------------------------------------------- grid axes
def split_values(text: str) -> List[str]:
    """Split ``v1,v2,...`` on the commas outside brackets and quotes, so ``[4,8],[2,4]`` is two values."""
    parts, current, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth < 0:
                raise SweepError(f"unbalanced brackets in grid values {text!r}")
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if depth or quote:
        raise SweepError(f"unbalanced brackets or quotes in grid values {text!r}")
    parts.append("".join(current).strip())
    return parts


def parse_grid_arg(text: str) -> Tuple[str, List[Any]]:
    """``KEY=v1,v2`` -> (KEY, [v1, v2]) with each value read like a command-line override."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--grid {text!r}: expected KEY=v1,v2,... such as SOLVER.BASE_LR=1e-3,1e-4")
    raw = split_values(values)
    if any(not v for v in raw):
        raise SweepError(f"--grid {key}: empty value in {values!r}")
    return key, [parse_value(v) for v in raw]


def check_axis(key: str, values: List[Any]) -> None:
    """An axis needs values, none twice, and may not set OUTPUT_DIR (the sweep names the folders)."""
    if not values:
        raise SweepError(f"grid key {key} has no values")
    texts = [json.dumps(v, sort_keys=True, default=str) for v in values]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        raise SweepError(f"grid key {key} repeats the value(s) {', '.join(dupes)}")
    if key == "OUTPUT_DIR":
        raise SweepError("OUTPUT_DIR cannot be a grid key: the sweep names each run's folder; "
                         "use --output-root and --name")


# --------------------------------------------------------------------------- run naming
def short_keys(keys: Sequence[str]) -> Dict[str, str]:
    """The shortest dotted suffix that still tells each key apart, lower-cased:
    SOLVER.BASE_LR -> base_lr, but SOLVER.SCHEDULER.NAME and MODEL.BACKBONE.NAME -> scheduler.name, backbone.name."""
    split = {k: k.split(".") for k in keys}
    out = {}
    for key, parts in split.items():
        for n in range(1, len(parts) + 1):
            suffix = parts[-n:]
            if all(other[-n:] != suffix for k, other in split.items() if k != key):
                break
        out[key] = ".".join(suffix).lower()
    return out


def format_value(value: Any) -> str:
    """A value as a file-name-safe word: 0.001, 1e-05, 4-8-16 for [4, 8, 16]."""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "-".join(format_value(v) for v in value) or "empty"
    elif isinstance(value, dict):
        text = "-".join(f"{k}-{format_value(v)}" for k, v in value.items()) or "empty"
    else:
        text = str(value)
    return _SAFE.sub("_", text).strip("_") or "_"


def run_name(settings: Dict[str, Any], short: Optional[Dict[str, str]] = None) -> str:
    """``model=unet__base_lr=0.001``: readable, safe as a folder name, stable across re-runs."""
    if not settings:
        return "default"
    short = short or short_keys(list(settings))
    name = "__".join(f"{_SAFE.sub('_', short[k])}={format_value(v)}" for k, v in settings.items())
    if len(name) > _MAX_NAME:  # keep it a legal file name; the hash keeps it unique
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:_MAX_NAME - 12]}__{digest}"
    return name


def value_text(value: Any) -> str:
    """A value as an override token that the command line parses back to the same value."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return repr(value)


# --------------------------------------------------------------------------- the sweep and its runs
@dataclass
class Run:
    name: str
    settings: Dict[str, Any]  # grid key -> this run's value, in grid order
    output_dir: str


@dataclass
class Sweep:
    base: str  # the base config file
    grid: List[Tuple[str, List[Any]]] = field(default_factory=list)
    overrides: List[str] = field(default_factory=list)  # KEY VALUE tokens for every run
    name: str = ""
    output_root: str = DEFAULT_OUTPUT_ROOT
    group_by: List[str] = field(default_factory=list)
    title: str = ""
    plugins: List[str] = field(default_factory=list)
    picks: Dict[str, str] = field(default_factory=dict)  # fixed group keys, e.g. AUGMENT none for every run

    @property
    def folder(self) -> str:
        return os.path.join(self.output_root, self.name)

    def set_axis(self, key: str, values: List[Any]) -> None:
        """Add a grid axis; naming a key again replaces its values (the command line beats the file)."""
        check_axis(key, values)
        self.grid = [(k, v) for k, v in self.grid if k != key] + [(key, list(values))]


def expand(sweep: Sweep) -> List[Run]:
    """Every combination of the grid's values, in the order the axes were given."""
    keys = [k for k, _ in sweep.grid]
    short = short_keys(keys)
    runs, seen = [], {}
    for combo in itertools.product(*(values for _, values in sweep.grid)):
        settings = dict(zip(keys, combo))
        name = run_name(settings, short)
        if name in seen:
            raise SweepError(f"runs {seen[name]} and {settings} would share the folder name '{name}'; "
                             f"make the grid values differ in letters, digits or . _ + -")
        seen[name] = settings
        runs.append(Run(name, settings, os.path.join(sweep.folder, name)))
    return runs


def split_settings(run: Run) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(group picks, plain overrides) of a run's settings."""
    groups = {k: v for k, v in run.settings.items() if k in GROUP_DIRS}
    return groups, {k: v for k, v in run.settings.items() if k not in GROUP_DIRS}


def run_picks(sweep: Sweep, run: Run) -> Dict[str, Any]:
    """The ``_base_`` pieces a run merges over the base: the fixed ones, then its grid's."""
    return {**sweep.picks, **split_settings(run)[0]}


def run_overrides(sweep: Sweep, run: Run) -> List[str]:
    """Fixed overrides, then the grid's, then OUTPUT_DIR: on the command line the last wins."""
    _, plain = split_settings(run)
    tokens = list(sweep.overrides)
    for key, value in plain.items():
        tokens += [key, value_text(value)]
    return tokens + ["OUTPUT_DIR", run.output_dir]


def shadowed_overrides(sweep: Sweep) -> List[str]:
    """Fixed override keys that a grid key or the sweep's OUTPUT_DIR replaces in every run."""
    grid = {k for k, _ in sweep.grid} | {"OUTPUT_DIR"}
    return [k for k in sweep.overrides[0::2] if k in grid]
