"""The data pre-flight check: every split of a config scanned once, every bad file reported.

``check_data(cfg)`` builds each split leniently and scans it (``segkit.data.problems``);
``segkit check-data`` prints that report, and the trainer runs the same scan first
(DATA.CHECK), then stops or skips the bad samples, depending on DATA.SKIP_BAD (``preflight``).

A dataset takes part by offering ``find_problems() -> list[Problem]`` and, optionally,
``find_notes() -> list[str]``. Any other dataset is checked by loading every item.
"""
from __future__ import annotations

import logging
from typing import List, Sequence, Set

from torch.utils.data import Subset

from .build import build_dataset
from .classes import dataset_meta, num_labels
from .problems import WORKERS, DataError, DataReport, Problem, check_dataset, item_key
from .statistics import label_counts, label_histograms

__all__ = ["check_data", "preflight", "sample_names"]

logger = logging.getLogger(__name__)


def check_data(cfg, splits: Sequence[str] = ("train", "val", "test"), workers: int = WORKERS) -> DataReport:
    """Scan every split of the configured dataset and return one report; prints nothing.

    Each split is built with ``strict=False``, so missing files become problems in the
    report instead of stopping the scan. An empty val split is fine when DATA.VAL_FRACTION
    is 0 (validation is off then).
    """
    report = DataReport(classes=list(dataset_meta(cfg).classes))
    for split in splits:
        dataset = build_dataset(cfg, split, strict=False)
        allow_empty = split == "val" and float(cfg.DATA.VAL_FRACTION) == 0.0
        found = check_dataset(dataset, split, allow_empty=allow_empty, workers=workers)
        if len(dataset):
            _check_labels(cfg, dataset, split, found, workers)
        report.merge(found)
    report.root = report.root or str(cfg.DATA.ROOT)
    return report


def sample_names(dataset, split: str) -> List[str]:
    """The sample id of every item, in order: its name, or ``split#index`` (``item_key``)."""
    base, indices = dataset, list(range(len(dataset)))
    while isinstance(base, Subset):
        indices, base = [base.indices[i] for i in indices], base.dataset
    names = getattr(base, "names", None)
    return [str(names[i]) if names is not None else item_key(split, i) for i in indices]


def _check_labels(cfg, dataset, split: str, report: DataReport, workers: int) -> None:
    """The label traps of a split whose files read: values beyond MODEL.NUM_CLASSES (the
    classic "device-side assert" of a cross-entropy), classes that never occur, and each class's
    pixel frequency for the report."""
    k, ignore = num_labels(cfg.MODEL.NUM_CLASSES), int(cfg.DATA.IGNORE_INDEX)
    meta = dataset_meta(cfg)
    hist = label_histograms(dataset, workers, cfg.DATA.CACHE_DIR, skip_errors=True)
    counts = label_counts(hist, sample_names(dataset, split), k, ignore)
    root = str(getattr(dataset, "root", "") or cfg.DATA.ROOT)
    for name, values in counts.out_of_range.items():
        shown = ", ".join(map(str, values[:12])) + (", …" if len(values) > 12 else "")
        binary = " (a binary model's masks hold 0 and 1)" if cfg.MODEL.NUM_CLASSES == 1 else ""
        report.errors.append(Problem(root, f"mask of sample '{name}' holds label(s) {{{shown}}}",
                                     f"class ids 0..{k - 1} (MODEL.NUM_CLASSES {cfg.MODEL.NUM_CLASSES}{binary}) or "
                                     f"DATA.IGNORE_INDEX {ignore}: raise MODEL.NUM_CLASSES, map those values to "
                                     f"classes, or make them DATA.IGNORE_INDEX", name, "mask", "label_range"))
    if split == "train" and counts.missing:
        report.notes.append(f"split 'train': class(es) {', '.join(repr(meta.classes[c]) for c in counts.missing)} "
                            "never occur, so the model cannot learn them (class weights give them 0)")
    elif counts.missing:
        report.notes.append(f"split '{split}': class(es) {', '.join(repr(meta.classes[c]) for c in counts.missing)} "
                            "never occur (their IoU there is undefined and left out of mIoU)")
    report.frequencies[split] = {"pixels": counts.pixels.tolist(), "images": counts.images.tolist()}


_SKIP_HINT = "set DATA.SKIP_BAD True to train without them, or DATA.CHECK False to skip this scan"


def preflight(cfg, splits: Sequence[str] = ("train", "val", "test")) -> Set[str]:
    """Scan the data before training (DATA.CHECK) and return the names of samples to skip.

    Bad samples stop the run with a DataError listing every one, unless DATA.SKIP_BAD is
    True: then each is named in a warning on the "segkit" logger and returned, for
    ``build_dataloader(..., exclude=...)``. Problems of a whole split (a missing list, an
    empty split) always stop the run, since skipping samples cannot fix them; pass
    ``splits`` to scan only the splits the run reads.
    """
    if not cfg.DATA.CHECK:
        return set()
    report = check_data(cfg, splits)
    if report.ok:
        if report.notes:
            logger.info("%s", report.format())
        return set()
    if report.split_problems:
        hint = ("DATA.SKIP_BAD cannot help with problems of a whole split; fix them, or set DATA.CHECK "
                "False to skip this scan" if cfg.DATA.SKIP_BAD else _SKIP_HINT)
        raise DataError(f"{report.format()}\n{hint}")
    if not cfg.DATA.SKIP_BAD:
        raise DataError(f"{report.format()}\n{_SKIP_HINT}")
    bad = report.bad_names
    logger.warning("DATA.SKIP_BAD is True: training without %d bad sample(s): %s\n%s",
                   len(bad), ", ".join(sorted(bad)), report.format())
    return bad
