"""Pictures of predictions: mask files, colour masks, overlays with contours, a best/worst grid,
and the per-class report of an evaluation (table and confusion matrix).

``segkit test --out-dir`` and ``segkit infer`` both write through :class:`PredictionWriter`,
so a mask or overlay looks the same whichever tool made it. ``masks/<name>.png`` holds the raw
labels: binary masks as 0/255 greyscale PNGs (readable by any viewer, and by the ``folder``
dataset with MASK_VALUES [[0, 0], [255, 1]]), multi-class masks as greyscale PNGs whose pixel
values are the class ids. ``colour/<name>.png`` paints each label in the dataset's palette
(DATA.PALETTE; see ``segkit.data.dataset_meta``), and the overlays use the same colours.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

from .utils.files import atomic_write, atomic_write_text
from .utils.palette import HIGH_CONTRAST, generic_palette

__all__ = ["PALETTE", "mask_image", "colour_mask", "overlay", "best_worst_grid", "confusion_figure",
           "PredictionWriter", "safe_stem", "output_names", "refuse_dataset_overlap", "check_prediction_dir",
           "foreign_files", "read_manifest", "MANIFEST", "class_table_csv", "confusion_csv"]

# Class colours (RGB) when none are given: class 0 (background) black, then a high-contrast list.
PALETTE = HIGH_CONTRAST


def _palette(palette: Optional[np.ndarray], labels: int = 256) -> np.ndarray:
    """(256, 3) uint8 colours: ``palette`` for its labels, the generic colours past it."""
    full = generic_palette(max(256, labels))[:256].copy()
    if palette is not None:
        given = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
        full[:len(given)] = given
    return full


def mask_image(pred: np.ndarray, num_classes: int = 1) -> Image.Image:
    """A (H, W) label array as a PNG-ready image of raw labels: 0/255 "L" for binary, class ids
    "L" otherwise."""
    pred = np.asarray(pred, dtype=np.uint8)
    if num_classes <= 1:
        return Image.fromarray(np.where(pred > 0, 255, 0).astype(np.uint8), mode="L")
    return Image.fromarray(pred, mode="L")


def colour_mask(pred: np.ndarray, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W, 3) uint8: every pixel in the colour of its label."""
    return _palette(palette)[np.asarray(pred, dtype=np.uint8)]


def overlay(image: np.ndarray, pred: np.ndarray, alpha: float = 0.45, contour: int = 2,
            palette: Optional[np.ndarray] = None) -> np.ndarray:
    """The image with each non-background class tinted in its colour and outlined (uint8 HWC RGB)."""
    image = np.asarray(image, dtype=np.uint8)
    pred = np.asarray(pred)
    if image.shape[:2] != pred.shape:
        raise ValueError(f"overlay: image is {image.shape[1]}x{image.shape[0]} but the mask is "
                         f"{pred.shape[1]}x{pred.shape[0]}; expected equal sizes")
    colours = _palette(palette)
    out = image.astype(np.float32)
    labels = [int(v) for v in np.unique(pred) if v != 0]
    for label in labels:
        where = pred == label
        out[where] = (1 - alpha) * out[where] + alpha * colours[label]
    out = out.round().astype(np.uint8)
    if contour > 0:
        for label in labels:
            binary = (pred == label).astype(np.uint8)
            contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in colours[label]), contour)
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
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, facecolor="white"))


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: str, title: str = "") -> None:
    """The confusion matrix as a PNG, each row normalised to 1 (the share of a true class's pixels
    given each label: the diagonal is the class's accuracy), with class names on both axes;
    values written in the cells up to 20 classes. matplotlib's object API, no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(classes)
    side = min(24.0, max(4.5, 0.45 * k + 2.5))
    fig = Figure(figsize=(side + 1.2, side), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's pixels")
    font = 9 if k <= 20 else max(3, int(180 / k))
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=90, fontsize=font)
    ax.set_yticks(range(k), [str(c) for c in classes], fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.6 else "black")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100, facecolor="white"))


def _csv_text(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if isinstance(v, float) and v != v else (f"{v:.6f}" if isinstance(v, float) else v)
                         for v in row])
    return text.getvalue()


def class_table_csv(per_class: Sequence[Dict[str, object]]) -> str:
    """The per-class rows of an evaluation as CSV (an undefined value, NaN, is an empty cell)."""
    header = ["class", "IoU", "Dice", "Acc", "Precision", "gt_pixels", "pred_pixels"]
    return _csv_text(header, [[row.get(k) for k in header] for row in per_class])


def confusion_csv(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """Pixel counts, one row per true class, one column per predicted class."""
    return _csv_text(["true \\ predicted", *classes], [[c, *row] for c, row in zip(classes, confusion)])


def safe_stem(name: str) -> str:
    """A file name for a sample name (which may hold path separators)."""
    return str(name).replace(os.sep, "__").replace("/", "__")


def output_names(paths: Sequence[str]) -> List[str]:
    """One distinct output name per input file, decided from the whole list (so always the same
    for the same inputs): the stem (``photos/a.jpg`` → ``a``) unless another input shares it;
    inputs that share a stem keep their extension (``a.jpg``, ``a.png``), and inputs that still
    share a name (the same file name in two folders) are prefixed with as many parent folders as
    tell them apart (``day1__a.jpg``, ``day2__a.jpg``). Case is ignored when comparing names, as
    macOS and Windows file systems do; names that differ only in case get ``~2``, ``~3``… in
    input order."""
    parts = [[p for p in os.path.abspath(path).split(os.sep) if p] or [path] for path in paths]
    levels = [0] * len(parts)

    def name(i: int, level: int) -> str:
        level = min(level, len(parts[i]))
        if level == 0:
            return os.path.splitext(parts[i][-1])[0] or parts[i][-1]
        return safe_stem("__".join(parts[i][-level:]))

    stuck: set = set()
    while True:
        groups: Dict[str, List[int]] = {}
        for i in range(len(parts)):
            groups.setdefault(name(i, levels[i]).casefold(), []).append(i)
        clashes = [g for g in groups.values() if len(g) > 1 and not stuck.issuperset(g)]
        if not clashes:
            break
        for group in clashes:
            # the first longer name that tells at least two of them apart
            for level in range(max(levels[i] for i in group) + 1, max(len(parts[i]) for i in group) + 1):
                if len({name(i, level).casefold() for i in group}) > 1:
                    for i in group:
                        levels[i] = level
                    break
            else:
                stuck.update(group)
    names = [name(i, levels[i]) for i in range(len(parts))]
    seen: Dict[str, int] = {}
    for i, n in enumerate(names):
        key = n.casefold()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            names[i] = f"{n}~{seen[key]}"
    return names


def refuse_dataset_overlap(path: str, data_root: Optional[str], what: str = "output folder",
                           may_hold: bool = False) -> None:
    """ValueError when ``path`` is ``data_root``, lies inside it or (unless ``may_hold``: for a file)
    holds it; symbolic links are resolved first. No output of segkit goes into a dataset."""
    if not path or not data_root:
        return
    out, root = (os.path.realpath(os.path.expanduser(str(p))) for p in (path, data_root))
    if out == root:
        why = "is the dataset folder DATA.ROOT"
    elif os.path.commonpath([out, root]) == root:
        why = f"lies inside the dataset folder DATA.ROOT '{data_root}'"
    elif not may_hold and os.path.commonpath([out, root]) == out:
        why = f"holds the dataset folder DATA.ROOT '{data_root}'"
    else:
        return
    raise ValueError(f"{what} '{path}' {why}; segkit never writes into a dataset (it would mix with or "
                     f"overwrite its images and masks). Choose a folder outside it, e.g. under work_dirs/")


PNG_SUBDIRS = ("masks", "colour", "overlays")
REPORT_FILES = ("per_image.csv", "best_worst.png", "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png")
MANIFEST = ".segkit-outputs"  # one path per line, relative to the folder: the files segkit wrote there


def read_manifest(out_dir: str) -> set:
    """The files (relative paths) segkit wrote in ``out_dir``; a torn last line is ignored."""
    try:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return set()
    lines = text.split("\n")
    return {line for line in lines[:-1] if line}  # the part after the last newline is torn or empty


def foreign_files(out_dir: str) -> List[str]:
    """Files in ``out_dir`` a PredictionWriter would replace but segkit did not write there."""
    owned = read_manifest(out_dir)
    found = []
    for sub in PNG_SUBDIRS:
        folder = os.path.join(out_dir, sub)
        if os.path.isdir(folder):
            found += [f"{sub}/{f}" for f in sorted(os.listdir(folder))
                      if f.lower().endswith(".png") and not f.startswith(".")]
    found += [f for f in REPORT_FILES if os.path.lexists(os.path.join(out_dir, f))]
    return [f for f in found if f not in owned]


def check_prediction_dir(out_dir: str, data_root: Optional[str] = None) -> None:
    """What a PredictionWriter checks before anything is written: ``out_dir`` is (or can become) a
    folder outside the dataset, and nothing it would replace was written by someone else."""
    refuse_dataset_overlap(out_dir, data_root)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"output folder '{out_dir}' is a file, not a folder")
    for sub in PNG_SUBDIRS:
        if os.path.exists(os.path.join(out_dir, sub)) and not os.path.isdir(os.path.join(out_dir, sub)):
            raise NotADirectoryError(f"output folder '{out_dir}': '{os.path.join(out_dir, sub)}' is a file, "
                                     f"where predictions go into a folder")
    foreign = foreign_files(out_dir) if os.path.isdir(out_dir) else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (f", … ({len(foreign)} in all)" if len(foreign) > 3 else "")
        raise ValueError(f"output folder '{out_dir}' already holds files segkit did not write there ({shown}); "
                         f"predictions never replace them. Choose a new or empty folder, or one an earlier "
                         f"segkit test/infer wrote (its {MANIFEST} lists what it wrote)")


def _save_image(path: str, image: Image.Image) -> None:
    atomic_write(path, lambda f: image.save(f, format="PNG"))


class PredictionWriter:
    """Writes ``masks/<name>.png`` (raw labels), ``colour/<name>.png`` (labels in ``palette``'s
    colours) and ``overlays/<name>.png`` under ``out_dir``; with records, ``finish`` adds
    ``per_image.csv`` (worst first) and ``best_worst.png``, and ``write_class_report`` the
    per-class table and confusion matrix of an evaluation.

    Nothing a user wrote is replaced: ``out_dir`` may not be or lie in (or hold) ``data_root``,
    and every file written is first listed in ``out_dir/.segkit-outputs``; a mask, overlay or
    report file already there that is not listed is refused (before anything is written, and
    again at the moment of writing). Files listed there (an earlier run's predictions) are
    replaced. Every file is written atomically (see ``segkit.utils.files.atomic_write``), so an
    interrupted run leaves whole files only. Two images given the same name in one run get
    ``~2``, ``~3``… suffixes instead of overwriting each other.
    """

    def __init__(self, out_dir: str, num_classes: int = 1, data_root: Optional[str] = None,
                 palette: Optional[np.ndarray] = None):
        check_prediction_dir(out_dir, data_root)
        self.out_dir, self.num_classes = out_dir, int(num_classes)
        self.palette = _palette(palette)
        self.owned = read_manifest(out_dir)
        self.files: Dict[str, Dict[str, str]] = {}  # name → its mask and overlay paths, this run
        self._taken: set = set()  # casefolded stems written this run

    def _claim(self, rel: str) -> str:
        """``out_dir/rel``, listed in the manifest before it is written (a kill in between leaves
        a listed file that does not exist, never an unlisted one segkit wrote)."""
        path = os.path.join(self.out_dir, *rel.split("/"))
        if rel in self.owned:
            return path
        if os.path.lexists(path):
            raise ValueError(f"'{path}' was not written by segkit (it is not listed in "
                             f"{os.path.join(self.out_dir, MANIFEST)}); it is not replaced")
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, MANIFEST), "a", encoding="utf-8") as f:
            f.write(rel + "\n")
        self.owned.add(rel)
        return path

    def write(self, name: str, image: np.ndarray, pred: np.ndarray) -> Dict[str, str]:
        stem = base = safe_stem(name)
        n = 1
        while stem.casefold() in self._taken:
            n += 1
            stem = f"{base}~{n}"
        paths = {kind: self._claim(f"{sub}/{stem}.png")
                 for kind, sub in (("mask", "masks"), ("colour", "colour"), ("overlay", "overlays"))}
        _save_image(paths["mask"], mask_image(pred, self.num_classes))
        _save_image(paths["colour"], Image.fromarray(colour_mask(pred, self.palette)))
        _save_image(paths["overlay"], Image.fromarray(overlay(image, pred, palette=self.palette)))
        self._taken.add(stem.casefold())
        self.files[str(name)] = paths
        return dict(paths)

    def write_class_report(self, result: Dict[str, object], prefix: str = "") -> Dict[str, str]:
        """``per_class.csv``, ``confusion_matrix.csv`` and ``confusion_matrix.png`` (rows normalised)
        from an evaluation result's ``per_class`` and ``confusion`` (keys with ``prefix``)."""
        per_class, confusion = result[f"{prefix}per_class"], result[f"{prefix}confusion"]
        classes = [str(row["class"]) for row in per_class]
        out = {"per_class_csv": self._claim("per_class.csv"), "confusion_csv": self._claim("confusion_matrix.csv"),
               "confusion_png": self._claim("confusion_matrix.png")}
        atomic_write_text(out["per_class_csv"], class_table_csv(per_class))
        atomic_write_text(out["confusion_csv"], confusion_csv(confusion, classes))
        confusion_figure(confusion, classes, out["confusion_png"], title=f"{result.get('split', '')} confusion "
                         "(rows: true class, normalised)".strip())
        return out

    def finish(self, records: List[dict], sort_key: str = "dice", columns: Optional[Sequence[str]] = None,
               per_side: int = 6) -> Dict[str, str]:
        """Per-image CSV sorted by ``sort_key`` ascending (worst first) and the best/worst grid."""
        rows = sorted(records, key=lambda r: (r[sort_key], str(r["name"])))
        columns = list(columns or [k for k, v in rows[0].items() if not isinstance(v, list)]) if rows else ["name"]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r.get(k), float) else r.get(k)) for k in columns})
        csv_path = self._claim("per_image.csv")
        atomic_write_text(csv_path, text.getvalue())
        out = {"csv": csv_path}
        if rows:
            n = min(per_side, (len(rows) + 1) // 2) if len(rows) > 1 else 1

            def tile(r) -> str:
                known = self.files.get(str(r["name"]))
                return known["overlay"] if known else os.path.join(self.out_dir, "overlays",
                                                                   f"{safe_stem(r['name'])}.png")

            def tiles(items):
                return [(tile(r), f"{r['name']}\n{sort_key} {r[sort_key]:.3f}") for r in items]

            out["grid"] = self._claim("best_worst.png")
            best_worst_grid(tiles(rows[::-1][:n]), tiles(rows[:n]), out["grid"])
        return out
