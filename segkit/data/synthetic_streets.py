"""Made-up street scenes in CamVid's SegNet layout: a multi-class task that needs no download.

Each 360x480 frame (CamVid's size) is drawn in perspective: sky, buildings with windows, a road
with lane marks vanishing to a horizon, sidewalks, trees, fences, and the small things that
make street scenes hard: thin poles (2-5 px wide), signs on them, cars, pedestrians and rarer
bicyclists, plus void patches. Every class has textured, varying colours and the frame gets a
random exposure, so a colour threshold does not solve it. Labels follow CamVid's 11 classes
(SegNet order) with 11 = void, so the ``camvid`` dataset and its packaged config read the tree
as they read the real one; class frequencies are roughly CamVid's (road, building and sky take
most pixels; poles, pedestrians and bicyclists well under 2 %).

It stands in for the real dataset in tests and in segkit's own measurements of the keep-ratio
pipeline; numbers on it are not CamVid numbers.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

import cv2
import numpy as np
from PIL import Image

__all__ = ["generate_synthetic_streets", "STREET_CLASSES"]

STREET_CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car",
                  "pedestrian", "bicyclist")
SKY, BUILDING, POLE, ROAD, SIDEWALK, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
VOID = 11
SPLITS = (("train", "trainannot"), ("val", "valannot"), ("test", "testannot"))


def _tint(rng: np.random.Generator, base: Tuple[int, int, int], spread: int = 40) -> Tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _fill(img: np.ndarray, lab: np.ndarray, mask: np.ndarray, colour, label: int, rng: np.random.Generator,
          texture: float = 18.0) -> None:
    """Paint ``mask`` pixels with a noisy ``colour`` and give them ``label``."""
    n = int(mask.sum())
    if n == 0:
        return
    noise = rng.normal(0, texture, (n, 1)) + rng.normal(0, texture / 3, (n, 3))
    img[mask] = np.clip(np.array(colour, np.float32) + noise, 0, 255).astype(np.uint8)
    lab[mask] = label


def _poly(shape, points) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.array(points, np.int32)], 1)
    return m.astype(bool)


def _frame(rng: np.random.Generator, h: int = 360, w: int = 480) -> Tuple[np.ndarray, np.ndarray]:
    img = np.zeros((h, w, 3), np.uint8)
    lab = np.full((h, w), VOID, np.uint8)
    horizon = int(h * rng.uniform(0.38, 0.5))
    vx = int(w * rng.uniform(0.35, 0.65))
    # sky (with a gradient) above the horizon
    sky = np.zeros((h, w), bool)
    sky[:horizon] = True
    top, low = np.array(_tint(rng, (120, 160, 215))), np.array(_tint(rng, (200, 210, 225)))
    ramp = np.linspace(0, 1, horizon)[:, None, None]
    img[:horizon] = np.clip(top + (low - top) * ramp + rng.normal(0, 4, (horizon, w, 3)), 0, 255).astype(np.uint8)
    lab[sky] = SKY
    # road and sidewalks, in perspective
    road_l, road_r = int(vx - w * rng.uniform(0.7, 1.1)), int(vx + w * rng.uniform(0.7, 1.1))
    _fill(img, lab, _poly((h, w), [(vx - 6, horizon), (vx + 6, horizon), (road_r, h), (road_l, h)]),
          _tint(rng, (100, 90, 100), 20), ROAD, rng, 10)
    for side, edge in ((-1, road_l), (1, road_r)):
        far = vx + side * 14
        outer = edge + side * 2 * w  # to the frame edge
        _fill(img, lab, _poly((h, w), [(vx + side * 6, horizon), (far, horizon), (outer, h), (edge, h)]),
              _tint(rng, (140, 130, 120), 25), SIDEWALK, rng, 14)
    # lane marks (still road)
    for t in np.linspace(0.1, 0.9, 6):
        y0, y1 = int(horizon + (h - horizon) * t), int(horizon + (h - horizon) * (t + 0.06))
        cv2.line(img, (vx, y0), (vx, y1), (235, 235, 225), max(1, int(6 * t)))
    # buildings along the horizon on both sides
    x = 0
    while x < w:
        bw = int(rng.integers(40, 140))
        bh = int(rng.integers(horizon // 3, horizon))
        if abs(x + bw / 2 - vx) > w * 0.06:
            m = np.zeros((h, w), bool)
            m[horizon - bh:horizon + 8, x:x + bw] = True
            m &= lab != ROAD
            _fill(img, lab, m, _tint(rng, (150, 110, 90), 50), BUILDING, rng, 14)
            for wy in range(horizon - bh + 6, horizon - 6, 14):  # windows, still building
                for wx in range(x + 5, x + bw - 8, 14):
                    img[wy:wy + 6, wx:wx + 6] = _tint(rng, (60, 70, 90), 20)
        x += bw
    # trees and fences at the sidewalk's back
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(0, w)), int(horizon - rng.integers(0, horizon // 3))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (cx, cy), (int(rng.integers(25, 70)), int(rng.integers(25, 60))), 0, 0, 360, 1, -1)
        _fill(img, lab, m.astype(bool), _tint(rng, (70, 120, 50), 30), TREE, rng, 25)
        trunk = np.zeros((h, w), bool)
        trunk[cy:horizon + 15, cx - 3:cx + 3] = True
        _fill(img, lab, trunk, _tint(rng, (80, 60, 40), 10), TREE, rng, 8)
    if rng.random() < 0.6:
        side = rng.choice([-1, 1])
        y0 = horizon + int(rng.integers(5, 25))
        x0, x1 = (0, vx - 60) if side < 0 else (vx + 60, w)
        m = np.zeros((h, w), bool)
        m[y0:y0 + int(rng.integers(14, 30)), x0:x1] = True
        fence = m & ((np.arange(w)[None, :] % 7 < 2) | (np.arange(h)[:, None] % 9 < 2))
        _fill(img, lab, fence, _tint(rng, (90, 90, 130), 20), FENCE, rng, 8)
    # cars on the road, scaled by depth
    for _ in range(int(rng.integers(0, 4))):
        t = rng.uniform(0.1, 0.9)
        y = int(horizon + (h - horizon) * t)
        size = 20 + 160 * t
        cx = int(vx + (rng.uniform(-0.5, 0.5)) * (road_r - road_l) * t)
        cw, ch = int(size), int(size * 0.55)
        m = np.zeros((h, w), bool)
        m[max(0, y - ch):y, max(0, cx - cw // 2):cx + cw // 2] = True
        _fill(img, lab, m, _tint(rng, tuple(int(c) for c in rng.integers(20, 230, 3)), 20), CAR, rng, 10)
        img[max(0, y - ch):max(0, y - ch) + ch // 3, max(0, cx - cw // 3):cx + cw // 3] = _tint(rng, (40, 50, 60), 10)
    # poles with signs, pedestrians and bicyclists: thin and small
    for _ in range(int(rng.integers(1, 5))):
        t = rng.uniform(0.05, 0.8)
        x = int(rng.integers(0, w))
        base = int(horizon + (h - horizon) * t)
        height, width = int(40 + 200 * t), max(2, int(2 + 4 * t))
        m = np.zeros((h, w), bool)
        m[max(0, base - height):base, x:x + width] = True
        _fill(img, lab, m, _tint(rng, (170, 170, 150), 25), POLE, rng, 10)
        if rng.random() < 0.5:
            s = max(4, int(6 + 18 * t))
            m = np.zeros((h, w), bool)
            m[max(0, base - height):max(0, base - height) + s, x - s // 2 + width // 2:x + s // 2 + width // 2] = True
            _fill(img, lab, m, _tint(rng, (200, 60, 60), 40), SIGN, rng, 12)
    for label, count, colour in ((PEDESTRIAN, int(rng.integers(0, 5)), (60, 50, 90)),
                                 (BICYCLIST, int(rng.random() < 0.35), (30, 110, 160))):
        for _ in range(count):
            t = rng.uniform(0.1, 0.85)
            base = int(horizon + (h - horizon) * t)
            x = int(rng.integers(0, w))
            ph, pw = int(12 + 70 * t), max(3, int(3 + 16 * t))
            if label == BICYCLIST:
                pw = int(pw * 2.2)
            m = np.zeros((h, w), np.uint8)
            cv2.ellipse(m, (x, base - ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1, -1)
            if label == BICYCLIST:
                for dx in (-pw // 2, pw // 2):
                    cv2.circle(m, (x + dx, base), max(2, pw // 3), 1, 2)
            _fill(img, lab, m.astype(bool), _tint(rng, colour, 40), label, rng, 20)
    # a void patch now and then (unlabelled clutter)
    if rng.random() < 0.3:
        x, y = int(rng.integers(0, w - 30)), int(rng.integers(horizon, h - 20))
        img[y:y + 20, x:x + 30] = _tint(rng, (128, 128, 128), 60)
        lab[y:y + 20, x:x + 30] = VOID
    gain = rng.uniform(0.7, 1.25)
    img = np.clip(img.astype(np.float32) * gain + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return img, lab


def generate_synthetic_streets(root: str, num_train: int = 60, num_val: int = 16, num_test: int = 32,
                               seed: int = 0, size: Tuple[int, int] = (360, 480)) -> Dict[str, int]:
    """Write frames and labels into ``root`` in the SegNet CamVid layout; returns the count per split."""
    rng = np.random.default_rng(seed)
    counts = dict(zip(("train", "val", "test"), (num_train, num_val, num_test)))
    for (split, annot), n in zip(SPLITS, counts.values()):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        os.makedirs(os.path.join(root, annot), exist_ok=True)
        for i in range(n):
            img, lab = _frame(rng, *size)
            name = f"street_{split}_{i:04d}.png"
            Image.fromarray(img).save(os.path.join(root, split, name))
            Image.fromarray(lab).save(os.path.join(root, annot, name))
    return counts
