"""Names and colours of a config's labels: one answer for every table, mask, log and served reply.

A registered dataset declares ``CLASSES`` (names of labels 0, 1, …) and may declare ``PALETTE``
(one RGB colour per label); its ``_base_/datasets/*.yaml`` repeats them as DATA.CLASSES and
DATA.PALETTE, which a config may change (a subset of a dataset, a relabelled folder). A binary
model (MODEL.NUM_CLASSES 1) still has two labels, background and foreground, so every output
that names labels names both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from ..registry import DATASETS
from ..utils.palette import generic_palette

__all__ = ["DatasetMeta", "dataset_meta", "num_labels"]


def num_labels(num_classes: int) -> int:
    """Labels a model with ``num_classes`` outputs predicts: 2 for a binary (one-channel) model."""
    return 2 if int(num_classes) == 1 else int(num_classes)


@dataclass(frozen=True)
class DatasetMeta:
    """``classes[i]`` and ``palette[i]`` (uint8 RGB) name and colour label ``i``."""

    classes: Tuple[str, ...]
    palette: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    def as_dict(self) -> dict:
        return {"classes": list(self.classes), "palette": self.palette.tolist()}


def _declared(cfg, attribute: str):
    """The registered dataset class's ``CLASSES``/``PALETTE``, or None (unknown name, none declared)."""
    name = cfg.DATA.DATASET.get("NAME")
    if name not in DATASETS:
        return None
    return getattr(DATASETS.get(name), attribute, None)


def dataset_meta(cfg) -> DatasetMeta:
    """Names and colours of the ``num_labels`` labels of ``cfg``: DATA.CLASSES / DATA.PALETTE when
    set, else what the dataset class declares (its first K entries), else ``class_<i>`` (binary:
    background, foreground) and ``generic_palette``."""
    k = num_labels(cfg.MODEL.NUM_CLASSES)
    classes: Sequence[str] = list(cfg.DATA.CLASSES) or list(_declared(cfg, "CLASSES") or [])[:k]
    if len(classes) != k:
        classes = ["background", "foreground"] if k == 2 else [f"class_{i}" for i in range(k)]
    palette = np.asarray(list(cfg.DATA.PALETTE) or list(_declared(cfg, "PALETTE") or [])[:k], dtype=np.int64)
    if palette.shape != (k, 3):
        palette = generic_palette(k)
    return DatasetMeta(tuple(str(c) for c in classes), palette.astype(np.uint8))
