"""Label colours when a dataset names none: the same colours in every mask, overlay and grid."""
from __future__ import annotations

import numpy as np

__all__ = ["HIGH_CONTRAST", "generic_palette"]

# Labels 0..8 (RGB): 0 (background) black, then a high-contrast list that reads well as overlays.
HIGH_CONTRAST = np.array([[0, 0, 0], [255, 64, 64], [64, 160, 255], [255, 210, 0], [64, 220, 120],
                          [200, 80, 255], [255, 140, 0], [0, 220, 220], [255, 105, 180]], dtype=np.uint8)


def _bit_colour(label: int) -> list:
    """PASCAL VOC's colour map (the bits of the label spread over R, G and B): distinct for 256 labels."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((label >> (3 * shift + channel)) & 1) << (7 - shift)
    return rgb


def generic_palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours: ``HIGH_CONTRAST`` first, VOC's bit colours for labels past it."""
    rows = [HIGH_CONTRAST[i] if i < len(HIGH_CONTRAST) else _bit_colour(i) for i in range(int(n))]
    return np.array(rows, dtype=np.uint8).reshape(-1, 3)
