"""From files to a sweep and from a sweep to each run's config: sweep files, ``_base_`` group
files, and the check that every run's config loads before anything trains.

A sweep is given either as a base config plus ``--grid`` axes, or as a sweep file (BASE, GRID,
OVERRIDES, …) that the command line can extend. Group keys (MODEL=unet) pick whole files from
``configs/_base_/``; each run then trains from a small config whose ``_BASE_`` lists the base and
those pieces, so the run's folder records exactly what it merged.
"""
from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import yaml

from ...config import config_dir, load_config, parse_value, resolve_config
from ...utils.files import atomic_write_text
from .grid import (DEFAULT_OUTPUT_ROOT, GROUP_DIRS, Run, Sweep, SweepError, is_word, parse_grid_arg, run_overrides,
                   run_picks, value_text)

__all__ = ["RUN_CONFIG", "SWEEP_FILE_KEYS", "configs_dir", "base_choices", "write_composed_config", "group_file",
           "compose_config", "validate",
           "read_sweep_file", "load_sweep"]

RUN_CONFIG = "sweep_config.yaml"
SWEEP_FILE_KEYS = ("BASE", "GRID", "OVERRIDES", "NAME", "OUTPUT_ROOT", "GROUP_BY", "TITLE")


def configs_dir(base: str) -> Path:
    """The folder holding ``_base_/``: the nearest one above the base config, else segkit's own
    packaged configs."""
    for folder in Path(base).resolve().parents:
        if (folder / "_base_").is_dir():
            return folder
        if (folder / "configs" / "_base_").is_dir():
            return folder / "configs"
    return config_dir()


def base_choices(base: str, key: str) -> Tuple[Path, str]:
    """The folder a group key picks from (``_base_/<dir>/`` of the configs holding ``base``) and
    its file names as one comma-separated line (``"none"`` when it is empty), for messages."""
    folder = configs_dir(base) / "_base_" / GROUP_DIRS[key]
    return folder, ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"


def write_composed_config(path: str, header: str, bases: List[str]) -> str:
    """A config file holding only ``_BASE_: bases`` under a comment ``header`` (atomically)."""
    atomic_write_text(path, header + yaml.safe_dump({"_BASE_": bases}, sort_keys=False))
    return path


def group_file(sweep: Sweep, key: str, value: Any) -> str:
    """The ``_base_`` file a group key's value names, e.g. MODEL=unet -> _base_/models/unet.yaml."""
    folder, choices = base_choices(sweep.base, key)
    if not is_word(value):
        raise SweepError(f"grid {key}={value!r}: a {key} value names a file in {folder}; "
                         f"expected a plain name, one of: {choices}")
    path = folder / f"{value}.yaml"
    if not path.is_file():
        raise SweepError(f"grid {key}={value}: there is no {path}; choose from: {choices}")
    return str(path)


def compose_config(sweep: Sweep, run: Run, folder: str) -> str:
    """The config a run trains from: the base alone, or a small file in ``folder`` whose ``_BASE_``
    lists the base and then the ``_base_`` pieces the run's group keys pick."""
    groups = run_picks(sweep, run)
    if not groups:
        return os.path.abspath(sweep.base)
    bases = [os.path.abspath(sweep.base)] + [group_file(sweep, k, v) for k, v in groups.items()]
    header = (f"# written by segkit sweep '{sweep.name}': the base config, then the pieces this run's "
              f"grid picks ({', '.join(f'{k}={v}' for k, v in groups.items())})\n")
    return write_composed_config(os.path.join(folder, RUN_CONFIG), header, bases)


def validate(sweep: Sweep, runs: List[Run]) -> None:
    """Load every run's config before anything trains, so a misspelt key or a value of the wrong
    type stops the sweep at once instead of failing run after run hours later."""
    with tempfile.TemporaryDirectory(prefix="segkit_sweep_") as tmp:
        for run in runs:
            folder = os.path.join(tmp, run.name)
            os.makedirs(folder)
            try:
                load_config(compose_config(sweep, run, folder), run_overrides(sweep, run))
            except SweepError:
                raise
            except (ValueError, FileNotFoundError) as e:
                raise SweepError(f"run {run.name}: {e}") from e


# --------------------------------------------------------------------------- sweep files
def read_sweep_file(path: str) -> Optional[dict]:
    """The file's mapping when it is a sweep file (it has BASE or GRID), else None: a plain config."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise SweepError(f"'{path}' is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not ({"BASE", "GRID"} & set(data)):
        return None
    unknown = [k for k in data if k not in SWEEP_FILE_KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], SWEEP_FILE_KEYS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SweepError(f"sweep file '{path}': unknown key '{unknown[0]}'.{hint} "
                         f"Sweep files hold {', '.join(SWEEP_FILE_KEYS)}")
    if "BASE" not in data:
        raise SweepError(f"sweep file '{path}' has no BASE: the config every run starts from")
    return data


def _as_list(path: str, key: str, value: Any) -> List[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        raise SweepError(f"sweep file '{path}': {key} must be a list of values, got a mapping")
    return [value]


def _from_sweep_file(path: str, data: dict) -> Sweep:
    base = data["BASE"]
    if not isinstance(base, str):
        raise SweepError(f"sweep file '{path}': BASE must be a config path, got {base!r}")
    sweep = Sweep(base=os.path.normpath(base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)),
                  name=str(data.get("NAME") or Path(path).stem),
                  output_root=str(data.get("OUTPUT_ROOT") or DEFAULT_OUTPUT_ROOT),
                  group_by=[str(k) for k in _as_list(path, "GROUP_BY", data.get("GROUP_BY") or [])],
                  title=str(data.get("TITLE") or ""))
    grid = data.get("GRID") or {}
    if not isinstance(grid, dict):
        raise SweepError(f"sweep file '{path}': GRID must map keys to lists of values")
    for key, values in grid.items():
        # YAML 1.1 reads 1e-4 (no dot) as a string; read strings as the command line would.
        sweep.set_axis(str(key), [parse_value(v) for v in _as_list(path, f"GRID.{key}", values)])
    fixed = data.get("OVERRIDES") or {}
    if not isinstance(fixed, dict):
        raise SweepError(f"sweep file '{path}': OVERRIDES must map keys to values")
    for key, value in fixed.items():
        sweep.overrides += [str(key), value_text(value)]
    return sweep


def _take_picks(sweep: Sweep) -> None:
    """Move fixed group keys (``AUGMENT none``) out of the overrides: they pick files, not values."""
    plain = []
    for key, value in zip(sweep.overrides[0::2], sweep.overrides[1::2]):
        if key in GROUP_DIRS:
            sweep.picks[key] = parse_value(value)
        else:
            plain += [key, value]
    sweep.overrides = plain


def load_sweep(config: str, grid_args: Sequence[str] = (), overrides: Sequence[str] = (),
               name: Optional[str] = None, output_root: Optional[str] = None,
               plugins: Sequence[str] = ()) -> Sweep:
    """A sweep from a base config or a sweep file (a path or a packaged name such as ``report/lr``)
    plus command-line grid axes and overrides."""
    config = resolve_config(config)
    data = read_sweep_file(config)
    sweep = _from_sweep_file(config, data) if data is not None else Sweep(base=config, name=Path(config).stem)
    for text in grid_args:
        sweep.set_axis(*parse_grid_arg(text))
    if len(overrides) % 2:
        raise SweepError(f"overrides come in KEY VALUE pairs; got an odd number: {list(overrides)}")
    sweep.overrides += list(overrides)
    _take_picks(sweep)
    sweep.name = name or sweep.name
    sweep.output_root = output_root or sweep.output_root
    sweep.plugins = list(plugins)
    if not is_word(sweep.name):
        raise SweepError(f"sweep name {sweep.name!r} must be one plain word (letters, digits, . _ + -)")
    if not os.path.isfile(sweep.base):
        raise FileNotFoundError(f"base config '{sweep.base}' does not exist")
    return sweep
