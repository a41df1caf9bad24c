"""How often each label occurs: the numbers class weights, the data check and the docs read.

``label_histograms`` counts the pixels of every label value (0..255) in every sample of a split,
reading only the label files when the dataset offers ``label(index)`` (else whole items). The
counts of a dataset whose samples have ``cache_identity`` are kept in the data cache folder,
keyed by every sample's files (path, mtime, size) and label mapping, so a second run, ``segkit
test`` after training and the trainer's class weights after ``check-data`` do not read a label
again. ``LabelCounts`` turns a split's histograms into what callers need: per-class pixels, the
pixels of the images each class occurs in (median-frequency weights), image counts, and the
samples holding values that are neither a label nor the ignore index.
"""
from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from torch.utils.data import Subset

from ..utils.files import atomic_write
from .cache import default_cache_dir
from .problems import WORKERS

__all__ = ["label_histograms", "LabelCounts", "label_counts"]

logger = logging.getLogger("segkit")

# Bump when what a histogram counts changes, so stale ones are never read.
STATS_VERSION = 1


def _unwrap(dataset):
    """(base dataset, index map) through ``Subset`` wrappers (DATA.SKIP_BAD)."""
    indices = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def _read_label(dataset, index: int) -> np.ndarray:
    label = getattr(dataset, "label", None)
    return np.asarray(label(index) if callable(label) else dataset[index]["mask"])


def _cache_path(dataset, indices: Sequence[int], cache_dir: str) -> Optional[str]:
    identity = getattr(dataset, "cache_identity", None)
    if identity is None:
        return None
    try:
        parts = [identity(i) for i in indices]
    except OSError:  # a missing file: counted afresh (and reported by the data check)
        return None
    digest = hashlib.sha1(repr((STATS_VERSION, parts)).encode("utf-8")).hexdigest()
    return os.path.join(cache_dir, "labels", f"{digest}.npz")


def label_histograms(dataset, workers: int = WORKERS, cache_dir: str = "", skip_errors: bool = False) -> np.ndarray:
    """(N, 256) int64: pixels of each label value in each sample of ``dataset``, in its order.

    ``skip_errors`` leaves a sample that cannot be read as a row of zeros (the data check reports
    the file itself); otherwise its error propagates.
    """
    base, indices = _unwrap(dataset)
    path = _cache_path(base, indices, os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir())))
    if path and os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                hist = z["hist"]
            if hist.shape == (len(indices), 256):
                return hist.astype(np.int64)
        except Exception as e:  # noqa: BLE001  a damaged entry is counted again, never fatal
            logger.warning("label statistics %s are unreadable (%s); counting again", path, e)

    failed: List[int] = []

    def count(position: int) -> np.ndarray:
        try:
            label = _read_label(base, indices[position])
        except Exception:  # noqa: BLE001
            if not skip_errors:
                raise
            failed.append(position)
            return np.zeros(256, np.int64)
        return np.bincount(label.astype(np.uint8, copy=False).ravel(), minlength=256).astype(np.int64)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        rows = list(pool.map(count, range(len(indices))))
    hist = np.stack(rows) if rows else np.zeros((0, 256), np.int64)
    if path and not failed:
        try:
            atomic_write(path, lambda f: np.savez_compressed(f, hist=hist))
        except OSError as e:
            logger.warning("cannot keep label statistics under '%s' (%s)", os.path.dirname(path), e)
    return hist


@dataclass(frozen=True)
class LabelCounts:
    """A split's label statistics for ``num_labels`` labels (see the module docstring).

    ``pixels[c]``: pixels of label c; ``image_pixels[c]``: labelled pixels of the images in which
    c occurs; ``images[c]``: images in which c occurs; ``out_of_range``: {sample name: values
    that are neither a label (< num_labels) nor ``ignore_index``}.
    """

    pixels: np.ndarray
    image_pixels: np.ndarray
    images: np.ndarray
    out_of_range: Dict[str, List[int]]

    @property
    def frequencies(self) -> np.ndarray:
        total = self.pixels.sum()
        return self.pixels / total if total else np.zeros_like(self.pixels, dtype=np.float64)

    @property
    def missing(self) -> List[int]:
        """Labels that never occur."""
        return [c for c, n in enumerate(self.pixels) if n == 0]


def label_counts(hist: np.ndarray, names: Sequence[str], num_labels: int, ignore_index: int) -> LabelCounts:
    """``LabelCounts`` of a split from its ``label_histograms`` and sample ``names``."""
    hist = np.asarray(hist, dtype=np.int64).reshape(-1, 256)
    labels = hist[:, :num_labels]
    present = labels > 0
    labelled = labels.sum(1)
    stray = hist.copy()
    stray[:, :num_labels] = 0
    if 0 <= ignore_index < 256:
        stray[:, ignore_index] = 0
    out_of_range = {str(names[i]): np.nonzero(stray[i])[0].tolist() for i in np.nonzero(stray.sum(1))[0]}
    return LabelCounts(pixels=labels.sum(0), image_pixels=(present * labelled[:, None]).sum(0),
                       images=present.sum(0), out_of_range=out_of_range)
