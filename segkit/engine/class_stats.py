"""The loss a run trains with, class weights included: the one place that counts training labels
for a CLASS_WEIGHT rule, so training, ``segkit test`` and export weigh classes alike.

A rule (``median_frequency``, ``inverse_sqrt_frequency``) is turned into numbers from the
training split's label statistics (``segkit.data.statistics``, cached in the data cache folder,
so a second run or ``segkit test`` reads no label again). The run keeps what it used in
``class_weights.json`` beside ``config.yaml``.
"""
from __future__ import annotations

import logging
from typing import Dict, Iterable, List, Optional

from ..data import build_dataset, dataset_meta, num_labels
from ..data.preflight import sample_names
from ..data.statistics import label_counts, label_histograms
from ..losses import ClassStats, build_loss

__all__ = ["needs_class_stats", "training_class_stats", "build_run_loss", "class_weight_record"]

logger = logging.getLogger("segkit")


def needs_class_stats(cfg) -> bool:
    """Whether a loss term's CLASS_WEIGHT names a rule computed from the training labels."""
    return any(isinstance(v, str) for term in cfg.LOSS.TERMS for k, v in dict(term).items()
               if k.upper() == "CLASS_WEIGHT")


def training_class_stats(cfg, exclude: Iterable[str] = ()) -> ClassStats:
    """Per-class pixel counts of the training split (without the ``exclude``d samples)."""
    dataset = build_dataset(cfg, "train", exclude=exclude)
    hist = label_histograms(dataset, cache_dir=cfg.DATA.CACHE_DIR)
    counts = label_counts(hist, sample_names(dataset, "train"), num_labels(cfg.MODEL.NUM_CLASSES),
                          int(cfg.DATA.IGNORE_INDEX))
    return ClassStats(pixels=tuple(counts.pixels.tolist()), image_pixels=tuple(counts.image_pixels.tolist()))


def build_run_loss(cfg, exclude: Iterable[str] = ()):
    """``build_loss(cfg)`` with the training split's statistics when a CLASS_WEIGHT rule needs them;
    the weights are logged, and classes that never occur are named in a warning."""
    stats: Optional[ClassStats] = training_class_stats(cfg, exclude) if needs_class_stats(cfg) else None
    loss = build_loss(cfg, class_stats=stats)
    names = dataset_meta(cfg).classes
    if stats is not None and stats.missing:
        logger.warning("class(es) %s never occur in the training split: their class weight is 0",
                       ", ".join(repr(names[c]) for c in stats.missing))
    for index, weights in getattr(loss, "class_weights", {}).items():
        logger.info("LOSS.TERMS[%s] class weights: %s", index,
                    ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights)))
    loss.class_stats = stats
    return loss


def class_weight_record(cfg, loss) -> Optional[Dict[str, object]]:
    """What ``class_weights.json`` holds: per weighted term its rule (or "given") and weights, the
    class names, and the training counts they came from; None when no term weighs classes."""
    weighted = getattr(loss, "class_weights", {})
    if not weighted:
        return None
    terms: List[Dict[str, object]] = []
    for index, weights in weighted.items():
        node = dict(cfg.LOSS.TERMS[int(index)])
        rule = next((v for k, v in node.items() if k.upper() == "CLASS_WEIGHT"), None)
        terms.append({"term": int(index), "name": node.get("NAME"), "rule": rule if isinstance(rule, str) else "given",
                      "weights": [float(w) for w in weights]})
    record: Dict[str, object] = {"classes": list(dataset_meta(cfg).classes), "terms": terms}
    stats = getattr(loss, "class_stats", None)
    if stats is not None:
        record["train_pixels"], record["train_image_pixels"] = list(stats.pixels), list(stats.image_pixels)
    return record
