"""The data pre-flight check: every split of a config scanned once, every bad file reported.

``check_data(cfg)`` builds each split leniently and scans it (``segkit.data.problems``);
``segkit check-data`` prints that report, and the trainer runs the same scan first
(DATA.CHECK), then stops or skips the bad samples, depending on DATA.SKIP_BAD (``preflight``).

A dataset takes part by offering ``find_problems() -> list[Problem]`` and, optionally,
``find_notes() -> list[str]``. Any other dataset is checked by loading every item.
"""
from __future__ import annotations

import logging
from typing import Sequence, Set

from .build import build_dataset
from .problems import WORKERS, DataError, DataReport, check_dataset

__all__ = ["check_data", "preflight"]

logger = logging.getLogger(__name__)


def check_data(cfg, splits: Sequence[str] = ("train", "val", "test"), workers: int = WORKERS) -> DataReport:
    """Scan every split of the configured dataset and return one report; prints nothing.

    Each split is built with ``strict=False``, so missing files become problems in the
    report instead of stopping the scan. An empty val split is fine when DATA.VAL_FRACTION
    is 0 (validation is off then).
    """
    report = DataReport()
    for split in splits:
        dataset = build_dataset(cfg, split, strict=False)
        allow_empty = split == "val" and float(cfg.DATA.VAL_FRACTION) == 0.0
        report.merge(check_dataset(dataset, split, allow_empty=allow_empty, workers=workers))
    report.root = report.root or str(cfg.DATA.ROOT)
    return report


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
