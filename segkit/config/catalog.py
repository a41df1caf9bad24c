"""Configs found by name: ``segkit train quickstart`` works from any folder, installed or cloned.

The repository's top-level ``configs/`` is the one copy in git (it is what users read, edit and
copy). A wheel carries the same files as ``segkit/configs/`` (``setup.py`` copies them in at
build time, as detectron2 does with its model zoo); a source checkout or an editable install
reads the folder beside the package. A config's name is its path under that folder without
``.yaml``: ``quickstart``, ``unet_aug_cosine``, ``report/lr``, ``examples/folder_binary``.
The ``_base_/`` fragments are not names to train from, but ``_BASE_`` chains resolve inside the
package exactly as in the repository, since they are relative to each file.
"""
from __future__ import annotations

import difflib
import fnmatch
import os
from pathlib import Path
from typing import List, Optional

__all__ = ["config_dir", "config_names", "packaged_config", "resolve_config", "config_summary", "UnknownConfigError"]

_PACKAGE = Path(__file__).resolve().parents[1]  # segkit/
_SUFFIXES = (".yaml", ".yml")
_FRAGMENTS = "_base_"


class UnknownConfigError(FileNotFoundError):
    """Neither a config file nor the name of a packaged config."""


def config_dir() -> Path:
    """The packaged configs: inside the package when installed from a wheel, beside it in a checkout."""
    for folder in (_PACKAGE / "configs", _PACKAGE.parent / "configs"):
        if folder.is_dir():
            return folder
    return _PACKAGE / "configs"


def config_names(filter: Optional[str] = None) -> List[str]:
    """Every packaged config's name, sorted; ``filter`` is an fnmatch pattern, or plain text that
    matches anywhere in the name."""
    root = config_dir()
    names = sorted(p.relative_to(root).with_suffix("").as_posix()
                   for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    names = [n for n in names if not n.startswith(_FRAGMENTS + "/")]
    if filter:
        pattern = filter if any(ch in filter for ch in "*?[") else f"*{filter}*"
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _stem(name: str) -> str:
    """``report/lr.yaml`` -> ``report/lr``; a name without a YAML suffix stays as it is."""
    return name[: -len(Path(name).suffix)] if Path(name).suffix in _SUFFIXES else name


def packaged_config(name: str) -> Optional[Path]:
    """The packaged file named ``name`` (``report/lr``, ``report/lr.yaml``), or None."""
    root = config_dir()
    stem = _stem(name)
    for suffix in _SUFFIXES:
        path = root / f"{stem}{suffix}"
        # Only names that stay inside the folder: "../x" is not a packaged config.
        if path.is_file() and os.path.normpath(path).startswith(os.path.normpath(root) + os.sep):
            return path
    return None


def resolve_config(config: str) -> str:
    """The file ``config`` means: itself when it exists (a path wins over a name), else the packaged
    config of that name (``quickstart``, ``report/lr``; ``configs/quickstart.yaml`` from outside a
    checkout means the packaged ``quickstart`` too). Raises :class:`UnknownConfigError` naming the
    closest packaged name otherwise."""
    config = os.fspath(config)
    if os.path.exists(os.path.expanduser(config)):
        return config
    name = Path(config).as_posix()
    candidates = [name]
    if name.startswith("configs/"):
        candidates.append(name[len("configs/"):])
    for candidate in candidates:
        path = packaged_config(candidate)
        if path is not None:
            return str(path)
    raise UnknownConfigError(_unknown_message(config, candidates[-1]))


def _unknown_message(config: str, name: str) -> str:
    known = config_names()
    stem = _stem(name)
    close = difflib.get_close_matches(stem, known, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    looks_like_path = "/" in config or os.sep in config or Path(config).suffix in _SUFFIXES
    what = (f"Config file '{config}' does not exist, and no packaged config is named '{stem}'." if looks_like_path
            else f"Config '{config}' is neither a file nor the name of a packaged config.")
    return f"{what}{hint} Packaged configs (segkit list configs): {', '.join(known) or 'none'}"


def config_summary(path: str) -> str:
    """The comment a config file starts with, as one paragraph ("" when it has none)."""
    lines = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("#").strip())
    return " ".join(" ".join(lines).split())
