"""Class weights from label statistics, for cross-entropy on imbalanced multi-class data.

A config names a rule (``CLASS_WEIGHT: median_frequency``) rather than numbers, because the
numbers belong to the training split: the trainer counts its labels once into ``ClassStats``
and ``build_loss(cfg, class_stats=...)`` turns the rule into one weight per class here.
"""
import math
import statistics
from dataclasses import dataclass
from typing import Iterable, List, Tuple

import numpy as np

__all__ = ["ClassStats", "class_weights", "RULES"]

RULES = ("median_frequency", "inverse_sqrt_frequency")


@dataclass(frozen=True)
class ClassStats:
    """Label counts of the training split, one entry per class.

    ``pixels[c]``: labelled pixels of class c. ``image_pixels[c]``: labelled pixels (of any
    class) of the images in which c occurs, the denominator of SegNet's per-class frequency,
    so a class seen in few images is not judged by the images it never appears in.
    """

    pixels: Tuple[int, ...]
    image_pixels: Tuple[int, ...]

    def __post_init__(self):
        pixels, image_pixels = tuple(int(p) for p in self.pixels), tuple(int(p) for p in self.image_pixels)
        if len(pixels) != len(image_pixels):
            raise ValueError(f"ClassStats: {len(pixels)} pixel counts but {len(image_pixels)} image_pixels counts; "
                             f"give one of each per class")
        if any(p < 0 for p in pixels + image_pixels):
            raise ValueError(f"ClassStats: counts must be >= 0, got pixels={pixels}, image_pixels={image_pixels}")
        short = [c for c, (p, t) in enumerate(zip(pixels, image_pixels)) if t < p]
        if short:
            raise ValueError(f"ClassStats: image_pixels < pixels for classes {short}: the images holding a class "
                             f"have at least that class's pixels")
        object.__setattr__(self, "pixels", pixels)
        object.__setattr__(self, "image_pixels", image_pixels)

    @property
    def num_classes(self) -> int:
        return len(self.pixels)

    @property
    def missing(self) -> Tuple[int, ...]:
        """Classes with no labelled pixel: they get weight 0, and the caller may want to warn."""
        return tuple(c for c, p in enumerate(self.pixels) if p == 0)

    @classmethod
    def from_masks(cls, masks: Iterable, num_classes: int, ignore_index: int = 255) -> "ClassStats":
        """Count label masks (numpy arrays or tensors, any shape; one per image)."""
        pixels, image_pixels = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
        for mask in masks:
            labels = np.asarray(mask).ravel()
            labels = labels[labels != ignore_index].astype(np.int64)
            counts = np.bincount(labels, minlength=num_classes)
            if labels.size and (labels.min() < 0 or len(counts) > num_classes):
                bad = sorted(set(labels[(labels < 0) | (labels >= num_classes)].tolist()))
                raise ValueError(f"ClassStats.from_masks: labels {bad} lie outside 0..{num_classes - 1} "
                                 f"and are not the ignore index {ignore_index}")
            pixels += counts
            image_pixels += (counts > 0) * labels.size
        return cls(tuple(pixels.tolist()), tuple(image_pixels.tolist()))

    def __add__(self, other: "ClassStats") -> "ClassStats":
        """Counts of two parts of a split (e.g. two processes) together."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"ClassStats: cannot add {self.num_classes} classes to {other.num_classes}")
        return ClassStats(tuple(a + b for a, b in zip(self.pixels, other.pixels)),
                          tuple(a + b for a, b in zip(self.image_pixels, other.image_pixels)))


def _median_frequency(stats: ClassStats, present: List[int]) -> List[float]:
    """Eigen & Fergus (2015), as SegNet uses it: median(freq) / freq_c, freq over the images holding c."""
    freq = {c: stats.pixels[c] / stats.image_pixels[c] for c in present}
    median = statistics.median(freq.values())
    return [median / freq[c] if c in freq else 0.0 for c in range(stats.num_classes)]


def _inverse_sqrt_frequency(stats: ClassStats, present: List[int]) -> List[float]:
    """1/sqrt(share of all pixels), scaled to mean 1 over the classes that occur: milder than 1/f."""
    total = sum(stats.pixels)
    raw = {c: 1.0 / math.sqrt(stats.pixels[c] / total) for c in present}
    mean = sum(raw.values()) / len(raw)
    return [raw[c] / mean if c in raw else 0.0 for c in range(stats.num_classes)]


def class_weights(rule: str, stats: ClassStats) -> List[float]:
    """One weight per class by ``rule``; a class that never occurs gets 0 (it is never a target,
    see ``stats.missing``)."""
    rules = {"median_frequency": _median_frequency, "inverse_sqrt_frequency": _inverse_sqrt_frequency}
    if rule not in rules:
        raise ValueError(f"class weight rule {rule!r} is unknown; known rules: {', '.join(RULES)}")
    present = [c for c, p in enumerate(stats.pixels) if p > 0]
    if not present:
        raise ValueError(f"class weight rule {rule!r}: the training split has no labelled pixel of any class, "
                         f"so there is nothing to weigh")
    return rules[rule](stats, present)
