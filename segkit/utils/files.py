"""Atomic file writes: a reader, a crash or a kill never leaves half a file behind.

Every file a run writes that a later run or another process reads (checkpoints, manifests,
test results, caches) goes through ``atomic_write``: a temporary file in the same folder,
flushed and fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). The temporary file is removed if anything fails.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import IO, Any, Callable

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_copy", "nearest_existing"]


def atomic_write(path: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a binary temporary file beside ``path``, fsync, rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str, data: Any, allow_nan: bool = True) -> None:
    """``data`` as indented JSON; values JSON cannot hold (paths, numpy scalars) as their str().
    ``allow_nan=False``: strict JSON, a NaN or infinity is a ValueError."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str, allow_nan=allow_nan) + "\n")


def nearest_existing(path: str) -> str:
    """``path`` (absolute) if something is there, a dangling link included, else its nearest
    ancestor that exists: what decides whether ``path`` can be created."""
    folder = os.path.abspath(path)
    while not os.path.lexists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def atomic_copy(src: str, path: str) -> None:
    """Copy ``src`` to ``path`` as atomically as ``atomic_write`` writes, without re-serialising."""
    with open(src, "rb") as source:
        atomic_write(path, lambda f: shutil.copyfileobj(source, f))
