"""Decode and resize each sample once: the deterministic part of loading, cached.

A plain loader decodes a full-size JPEG (Oxford photos are up to 1646 px) and shrinks it to
the network's size for every sample of every epoch; at 128 px that costs more than the
model's step. Everything before the first random augmentation is the same every epoch, so
it is done once and kept, as uint8 arrays at the geometry's deterministic size: INPUT.SIZE² for
the square geometry, the keep-ratio rescale to INPUT.SCALE for keep_ratio (segkit.data.geometry):

* ``disk`` (default): one ``.npz`` per sample under DATA.CACHE_DIR, shared by loader
  workers, later epochs and later runs (tools/test.py after tools/train.py). Written
  atomically (temporary file + rename), so workers racing on one sample never read half a
  file.
* ``memory``: a dict in each loading process (no files; every worker fills its own).
* ``none``: decode and resize every time, as before.

Under keep_ratio only items the rescale shrinks are kept: a frame already at its scale (a
CamVid or Cityscapes frame at native size) would only trade a quick decode for a decoded
array several times its file's size (Cityscapes' train split would take about 20 GB), so a
tiny marker records that the sample is read directly.

An entry's key is made from each source file's path, modification time (ns) and size in
bytes, the dataset's label mapping, the target size (or keep-ratio scale), the resize method
and the decoder's version (``segkit.utils.images.DECODE_VERSION``, 2 since images and labels
are turned upright by EXIF orientation), so touching or replacing a file, changing INPUT.SIZE
or changing what a file decodes to reads the files again; stale entries are simply never read.
The resize is the very op that ``build_transforms`` puts first (area averaging down, bilinear
up, nearest for masks), so a cached item is what the uncached pipeline would make, and that
first op becomes a no-op. With DATA.JPEG_DRAFT, libjpeg decodes at 1/2, 1/4 or 1/8 scale
while the result still covers the target size (nearly the same pixels, a fraction of the work).

A dataset takes part by offering ``cache_identity(index) -> tuple`` and
``load_item(index, draft_size=None) -> item``; others pass through unchanged (their items
are resized by the transform pipeline as before). ``draft_size`` is an int (both sides at
least that) or a callable ``(width, height) -> (w, h)`` (see ``decode_image``).
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from torch.utils.data import Subset

from ..utils.files import atomic_write
from ..utils.images import DECODE_VERSION, DraftSize
from .geometry import RescaleKeepRatio
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
        size: the side every image and mask is resized to (INPUT.SIZE, square geometry).
        mode: "disk", "memory" or "none" (see the module docstring).
        cache_dir: folder for "disk" entries; empty: :func:`default_cache_dir`.
        draft: let libjpeg decode JPEGs at a reduced scale that still covers the target size.
        scale: instead of ``size``, the keep-ratio (long, short) edge bounds (INPUT.SCALE).
    """

    def __init__(self, size: Optional[int] = None, mode: str = "disk", cache_dir: str = "", draft: bool = True,
                 scale: Optional[Sequence[int]] = None):
        if mode not in CACHE_MODES:
            raise ValueError(f"DATA.CACHE is '{mode}'; expected one of {list(CACHE_MODES)}")
        if (size is None) == (scale is None):
            raise ValueError("ResizeCache takes either size (square geometry) or scale (keep_ratio)")
        self.mode, self.draft = mode, bool(draft)
        self.cache_dir = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
        if scale is None:
            self.size, self.scale = int(size), None
            self.resize = resize_transform(self.size)
            self.target: Any = (self.size, _RESIZE_TAG)
            self.draft_size: DraftSize = self.size
        else:
            self.size, self.scale = None, (int(scale[0]), int(scale[1]))
            self.resize = RescaleKeepRatio(self.scale)
            self.target = ("keep_ratio", self.scale, _RESIZE_TAG)
            self.draft_size = self._keep_ratio_draft
        self.memory: Dict[str, Optional[Dict[str, Any]]] = {}
        self.hits = self.misses = 0

    def _keep_ratio_draft(self, width: int, height: int) -> Tuple[int, int]:
        h, w = self.resize.target_size(height, width)
        return w, h

    # ------------------------------------------------------------------ keys
    def key(self, dataset, index: int) -> Optional[str]:
        """Hex digest naming ``dataset[index]`` at this size, or None if it cannot be cached."""
        dataset, index = _unwrap(dataset, index)
        identity = getattr(dataset, "cache_identity", None)
        if identity is None or not hasattr(dataset, "load_item"):
            return None
        parts = (CACHE_VERSION, DECODE_VERSION, identity(index), *self.target, self.draft)
        return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()

    def path(self, key: str) -> str:
        return os.path.join(self.cache_dir, "resized", key[:2], f"{key}.npz")

    # ------------------------------------------------------------------ items
    def get(self, dataset, index: int) -> Dict[str, Any]:
        """``dataset[index]`` at the target size (image HWC, mask HW, uint8), cached by mode."""
        key = None if self.mode == "none" else self.key(dataset, index)
        if key is None:
            return self.load(dataset, index)[0]
        if self.mode == "memory":
            if key in self.memory:
                self.hits += 1
                item = self.memory[key]
            else:
                self.misses += 1
                item, keep = self.load(dataset, index)
                self.memory[key] = item if keep else None
                return item
            if item is None:  # a sample not worth keeping (see the module docstring)
                return self.load(dataset, index)[0]
            # Copies: a transform that worked in place must not alter the cached pixels.
            return {**item, "image": item["image"].copy(), "mask": item["mask"].copy()}
        found, item = self._read(key)
        if found:
            self.hits += 1
            return item if item is not None else self.load(dataset, index)[0]
        self.misses += 1
        item, keep = self.load(dataset, index)
        self._write(key, item if keep else None)
        return item

    def load(self, dataset, index: int) -> Tuple[Dict[str, Any], bool]:
        """Decode (draft-scaled when allowed) and resize, bypassing the cache; and whether the
        result is worth keeping (always for the square geometry; under keep_ratio when the
        rescale shrank the decoded image)."""
        base, base_index = _unwrap(dataset, index)
        if hasattr(base, "load_item"):
            item = base.load_item(base_index, draft_size=self.draft_size if self.draft else None)
        else:
            item = dataset[index]
        decoded = item["image"].shape[0] * item["image"].shape[1]
        out = self.resize(image=item["image"], mask=item["mask"])
        image, mask = np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["mask"])
        keep = self.scale is None or image.shape[0] * image.shape[1] < decoded
        return {**item, "image": image, "mask": mask}, keep

    def _read(self, key: str) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """(found, item); a found marker of a sample read directly gives (True, None)."""
        try:
            with np.load(self.path(key), allow_pickle=False) as z:
                if "direct" in z.files:
                    return True, None
                return True, {"image": z["image"], "mask": z["mask"], "name": str(z["name"])}
        except FileNotFoundError:
            return False, None
        except Exception as e:  # noqa: BLE001  a damaged entry is rebuilt, never fatal
            logger.warning("cache entry %s is unreadable (%s); decoding the sample again", self.path(key), e)
            return False, None

    def _write(self, key: str, item: Optional[Dict[str, Any]]) -> None:
        """Store ``item``, or a marker that the sample is read directly when it is None."""
        path = self.path(key)
        try:
            if item is None:
                atomic_write(path, lambda f: np.savez(f, direct=np.array(True)))
            else:
                atomic_write(path, lambda f: np.savez(f, image=item["image"], mask=item["mask"],
                                                      name=np.array(str(item["name"]))))
        except OSError as e:
            logger.warning("cannot write the data cache under DATA.CACHE_DIR '%s' (%s); keeping resized "
                           "samples in memory instead", self.cache_dir, e)
            self.mode = "memory"
            self.memory[key] = item

    def __repr__(self) -> str:
        where = f", dir='{self.cache_dir}'" if self.mode == "disk" else ""
        target = f"size={self.size}" if self.scale is None else f"scale={self.scale}"
        return f"ResizeCache({target}, mode='{self.mode}'{where}, draft={self.draft})"
