"""Decode and resize each sample once: the deterministic part of loading, cached.

A plain loader decodes a full-size JPEG (Oxford photos are up to 1646 px) and shrinks it to
the network's size for every sample of every epoch; at 128 px that costs more than the
model's step. Everything before the first random augmentation is the same every epoch, so
it is done once and kept, as uint8 arrays at INPUT.SIZE:

* ``disk`` (default): one ``.npz`` per sample under DATA.CACHE_DIR, shared by loader
  workers, later epochs and later runs (tools/test.py after tools/train.py). Written
  atomically (temporary file + rename), so workers racing on one sample never read half a
  file.
* ``memory``: a dict in each loading process (no files; every worker fills its own).
* ``none``: decode and resize every time, as before.

An entry's key is made from each source file's path, modification time (ns) and size in
bytes, the dataset's label mapping, the target size, the resize method and the decoder's
version (``segkit.utils.images.DECODE_VERSION``, 2 since images and labels are turned upright
by EXIF orientation), so touching or replacing a file, changing INPUT.SIZE or changing what a
file decodes to reads the files again; stale entries are simply never read. The resize is
the very ``A.Resize`` that ``build_transforms`` puts first (area averaging down, bilinear up,
nearest for masks), so a cached item is what the uncached pipeline would make, and that
Resize becomes a no-op. With DATA.JPEG_DRAFT, libjpeg decodes at 1/2, 1/4 or 1/8 scale
while the result stays at least INPUT.SIZE on both sides (nearly the same pixels, a fraction
of the work).

A dataset takes part by offering ``cache_identity(index) -> tuple`` and
``load_item(index, draft_size=None) -> item``; others pass through unchanged (their items
are resized by the transform pipeline as before).
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
from torch.utils.data import Subset

from ..utils.files import atomic_write
from ..utils.images import DECODE_VERSION
from .transforms import resize_transform

__all__ = ["ResizeCache", "CACHE_MODES", "default_cache_dir"]

logger = logging.getLogger("segkit")

CACHE_MODES = ("disk", "memory", "none")
# Bump when what an entry holds or how it is made changes, so old entries are never read.
CACHE_VERSION = 1
# The resize method, part of every key: build_transforms' Resize (see the module docstring).
_RESIZE_TAG = "area-down/linear-up/nearest-mask"


def default_cache_dir() -> str:
    """$SEGKIT_CACHE_DIR, else $XDG_CACHE_HOME/segkit, else ~/.cache/segkit."""
    if os.environ.get("SEGKIT_CACHE_DIR"):
        return os.environ["SEGKIT_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "segkit")


def file_identity(path: str) -> Tuple[str, int, int]:
    """(absolute path, mtime in ns, size in bytes): changes whenever the file does."""
    st = os.stat(path)
    return os.path.abspath(path), st.st_mtime_ns, st.st_size


def _unwrap(dataset, index: int):
    """See through ``torch.utils.data.Subset`` (what DATA.SKIP_BAD may wrap a dataset in)."""
    while isinstance(dataset, Subset):
        dataset, index = dataset.dataset, dataset.indices[index]
    return dataset, index


class ResizeCache:
    """Resized uint8 items of any dataset that offers ``cache_identity``/``load_item``.

    Args:
        size: the side every image and mask is resized to (INPUT.SIZE).
        mode: "disk", "memory" or "none" (see the module docstring).
        cache_dir: folder for "disk" entries; empty: :func:`default_cache_dir`.
        draft: let libjpeg decode JPEGs at a reduced scale that still covers ``size``.
    """

    def __init__(self, size: int, mode: str = "disk", cache_dir: str = "", draft: bool = True):
        if mode not in CACHE_MODES:
            raise ValueError(f"DATA.CACHE is '{mode}'; expected one of {list(CACHE_MODES)}")
        self.size, self.mode, self.draft = int(size), mode, bool(draft)
        self.cache_dir = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
        self.resize = resize_transform(self.size)
        self.memory: Dict[str, Dict[str, Any]] = {}
        self.hits = self.misses = 0

    # ------------------------------------------------------------------ keys
    def key(self, dataset, index: int) -> Optional[str]:
        """Hex digest naming ``dataset[index]`` at this size, or None if it cannot be cached."""
        dataset, index = _unwrap(dataset, index)
        identity = getattr(dataset, "cache_identity", None)
        if identity is None or not hasattr(dataset, "load_item"):
            return None
        parts = (CACHE_VERSION, DECODE_VERSION, identity(index), self.size, _RESIZE_TAG, self.draft)
        return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()

    def path(self, key: str) -> str:
        return os.path.join(self.cache_dir, "resized", key[:2], f"{key}.npz")

    # ------------------------------------------------------------------ items
    def get(self, dataset, index: int) -> Dict[str, Any]:
        """``dataset[index]`` resized to ``size`` (image HWC, mask HW, uint8), cached by mode."""
        key = None if self.mode == "none" else self.key(dataset, index)
        if key is None:
            return self.load(dataset, index)
        if self.mode == "memory":
            item = self.memory.get(key)
            if item is None:
                self.misses += 1
                item = self.memory[key] = self.load(dataset, index)
            else:
                self.hits += 1
            # Copies: a transform that worked in place must not alter the cached pixels.
            return {**item, "image": item["image"].copy(), "mask": item["mask"].copy()}
        item = self._read(key)
        if item is not None:
            self.hits += 1
            return item
        self.misses += 1
        item = self.load(dataset, index)
        self._write(key, item)
        return item

    def load(self, dataset, index: int) -> Dict[str, Any]:
        """Decode (draft-scaled when allowed) and resize, bypassing the cache."""
        base, base_index = _unwrap(dataset, index)
        if hasattr(base, "load_item"):
            item = base.load_item(base_index, draft_size=self.size if self.draft else None)
        else:
            item = dataset[index]
        out = self.resize(image=item["image"], mask=item["mask"])
        return {**item, "image": np.ascontiguousarray(out["image"]), "mask": np.ascontiguousarray(out["mask"])}

    def _read(self, key: str) -> Optional[Dict[str, Any]]:
        try:
            with np.load(self.path(key), allow_pickle=False) as z:
                return {"image": z["image"], "mask": z["mask"], "name": str(z["name"])}
        except FileNotFoundError:
            return None
        except Exception as e:  # noqa: BLE001  a damaged entry is rebuilt, never fatal
            logger.warning("cache entry %s is unreadable (%s); decoding the sample again", self.path(key), e)
            return None

    def _write(self, key: str, item: Dict[str, Any]) -> None:
        path = self.path(key)
        try:
            atomic_write(path, lambda f: np.savez(f, image=item["image"], mask=item["mask"],
                                                  name=np.array(str(item["name"]))))
        except OSError as e:
            logger.warning("cannot write the data cache under DATA.CACHE_DIR '%s' (%s); keeping resized "
                           "samples in memory instead", self.cache_dir, e)
            self.mode = "memory"
            self.memory[key] = item

    def __repr__(self) -> str:
        where = f", dir='{self.cache_dir}'" if self.mode == "disk" else ""
        return f"ResizeCache(size={self.size}, mode='{self.mode}'{where}, draft={self.draft})"
