"""Pictures of predictions: mask files, overlays with contours, and a best/worst grid.

``tools/test.py --out-dir`` and ``tools/infer.py`` both write through :class:`PredictionWriter`,
so a mask or overlay looks the same whichever tool made it. Binary masks are saved as 0/255
greyscale PNGs (readable by any viewer, and by the ``folder`` dataset with MASK_VALUES
[[0, 0], [255, 1]]); multi-class masks as palette PNGs whose pixel values are the class ids.
"""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

__all__ = ["PALETTE", "mask_image", "overlay", "best_worst_grid", "PredictionWriter", "safe_stem"]

# Class colours (RGB): class 0 (background) is never painted; 1.. follow a high-contrast list.
PALETTE = np.array([[0, 0, 0], [255, 64, 64], [64, 160, 255], [255, 210, 0], [64, 220, 120],
                    [200, 80, 255], [255, 140, 0], [0, 220, 220], [255, 105, 180]], dtype=np.uint8)


def _colour(label: int) -> np.ndarray:
    """Class ``label``'s colour; labels past the palette cycle through it, skipping black."""
    return PALETTE[label] if label < len(PALETTE) else PALETTE[1 + (label - 1) % (len(PALETTE) - 1)]


def mask_image(pred: np.ndarray, num_classes: int = 1) -> Image.Image:
    """A (H, W) label array as a PNG-ready image: 0/255 "L" for binary, class-id palette "P" otherwise."""
    pred = np.asarray(pred, dtype=np.uint8)
    if num_classes <= 1:
        return Image.fromarray(np.where(pred > 0, 255, 0).astype(np.uint8), mode="L")
    img = Image.fromarray(pred, mode="P")
    palette = np.zeros((256, 3), np.uint8)
    for c in range(256):
        palette[c] = _colour(c) if c else (0, 0, 0)
    img.putpalette(palette.flatten().tolist())
    return img


def overlay(image: np.ndarray, pred: np.ndarray, alpha: float = 0.45, contour: int = 2) -> np.ndarray:
    """The image with each non-background class tinted in its colour and outlined (uint8 HWC RGB)."""
    image = np.asarray(image, dtype=np.uint8)
    pred = np.asarray(pred)
    if image.shape[:2] != pred.shape:
        raise ValueError(f"overlay: image is {image.shape[1]}x{image.shape[0]} but the mask is "
                         f"{pred.shape[1]}x{pred.shape[0]}; expected equal sizes")
    out = image.astype(np.float32)
    for label in np.unique(pred):
        if label == 0:
            continue
        where = pred == label
        out[where] = (1 - alpha) * out[where] + alpha * _colour(int(label))
    out = out.round().astype(np.uint8)
    if contour > 0:
        for label in np.unique(pred):
            if label == 0:
                continue
            binary = (pred == label).astype(np.uint8)
            contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in _colour(int(label))), contour)
    return out


def _thumb(path: str, size: int) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = size / max(img.width, img.height)  # small images are enlarged too, so tiles match
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
        tile = Image.new("RGB", (size, size), (32, 32, 32))
        tile.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        return tile


def best_worst_grid(best: Sequence[tuple], worst: Sequence[tuple], path: str, thumb: int = 192) -> None:
    """One PNG page: a row of the best and a row of the worst predictions.

    ``best``/``worst`` hold (overlay_path, caption) pairs; captions (up to two lines) are written
    under each tile. Drawn with matplotlib's object API (no display, no pyplot state), laid out
    in pixels so the page is ``thumb``-sized tiles whatever the number of images.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi, label_w, caption_h, pad = 100, 60, 32, 6
    cols = max(len(best), len(worst), 1)
    width = label_w + cols * (thumb + pad) + pad
    height = 2 * (thumb + caption_h + pad) + pad
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    font = 12 * 72 / dpi  # 12 px text
    max_chars = int(thumb / 6.5)  # about 6.5 px per character
    for row, (title, items) in enumerate((("best", best), ("worst", worst))):
        y = pad + row * (thumb + caption_h + pad)  # the tile's top, in pixels from the top
        fig.text(6 / width, 1 - (y + thumb / 2) / height, title, fontsize=font, va="center", ha="left")
        for col, (tile_path, caption) in enumerate(items):
            x = label_w + pad + col * (thumb + pad)
            ax = fig.add_axes((x / width, 1 - (y + thumb) / height, thumb / width, thumb / height))
            ax.imshow(np.asarray(_thumb(tile_path, thumb)), interpolation="nearest")
            ax.set_axis_off()
            lines = [line[:max_chars] for line in str(caption).split("\n")[:2]]
            fig.text(x / width, 1 - (y + thumb + 2) / height, "\n".join(lines), fontsize=font, va="top",
                     ha="left", linespacing=1.1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")


def safe_stem(name: str) -> str:
    """A file name for a sample name (which may hold path separators)."""
    return str(name).replace(os.sep, "__").replace("/", "__")


class PredictionWriter:
    """Writes ``masks/<name>.png`` and ``overlays/<name>.png`` under ``out_dir``; with
    records, ``finish`` adds ``per_image.csv`` (worst first) and ``best_worst.png``."""

    def __init__(self, out_dir: str, num_classes: int = 1):
        self.out_dir, self.num_classes = out_dir, int(num_classes)
        for sub in ("masks", "overlays"):
            os.makedirs(os.path.join(out_dir, sub), exist_ok=True)

    def write(self, name: str, image: np.ndarray, pred: np.ndarray) -> Dict[str, str]:
        stem = safe_stem(name)
        paths = {"mask": os.path.join(self.out_dir, "masks", f"{stem}.png"),
                 "overlay": os.path.join(self.out_dir, "overlays", f"{stem}.png")}
        mask_image(pred, self.num_classes).save(paths["mask"])
        Image.fromarray(overlay(image, pred)).save(paths["overlay"])
        return paths

    def finish(self, records: List[dict], sort_key: str = "dice", columns: Optional[Sequence[str]] = None,
               per_side: int = 6) -> Dict[str, str]:
        """Per-image CSV sorted by ``sort_key`` ascending (worst first) and the best/worst grid."""
        rows = sorted(records, key=lambda r: (r[sort_key], str(r["name"])))
        columns = list(columns or [k for k, v in rows[0].items() if not isinstance(v, list)]) if rows else ["name"]
        csv_path = os.path.join(self.out_dir, "per_image.csv")
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r.get(k), float) else r.get(k)) for k in columns})
        out = {"csv": csv_path}
        if rows:
            n = min(per_side, (len(rows) + 1) // 2) if len(rows) > 1 else 1

            def tiles(items):
                return [(os.path.join(self.out_dir, "overlays", f"{safe_stem(r['name'])}.png"),
                         f"{r['name']}\n{sort_key} {r[sort_key]:.3f}") for r in items]

            out["grid"] = os.path.join(self.out_dir, "best_worst.png")
            best_worst_grid(tiles(rows[::-1][:n]), tiles(rows[:n]), out["grid"])
        return out
