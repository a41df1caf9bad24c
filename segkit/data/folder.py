"""Your own data: a folder of images and masks with matching file names, trained with no code.

    <root>/images/<stem>.<jpg|png|tif|…>     any format PIL reads, any mode (see ``load_rgb``)
    <root>/masks/<stem>.png                   one value per class (greyscale or palette), or one
                                              colour per class (RGB or palette) with MASK_COLORS
    <root>/train.txt, val.txt, test.txt       optional: one stem per line (the whole line: stems
                                              may hold spaces; blank and "#" lines are skipped)

Mask pixel values become class ids through ``mask_values`` (DATA.DATASET.MASK_VALUES), a list of
[value, class] pairs, so 0/255 masks and 0/1/2 masks need no conversion; ``ignore_value``
names the value meaning "not labelled". Colour masks (what annotation tools export) map through
``mask_colors`` (DATA.DATASET.MASK_COLORS), a list of [r, g, b, class]; a palette PNG is read
through its palette there, and ``ignore_color`` names the "not labelled" colour. Any value or
colour the mapping lacks is ignored in training and reported by ``segkit check-data``, with
the likely cause when it is a classic (a 0/255 mask mapped as 0/1, palette indices taken for
colours, a colour mask read as values).

Splits: a split file, where present, lists that split. Otherwise ``test_fraction`` of all
stems is held out as test and ``val_fraction`` of the rest as val, by a shuffle seeded with
SEED, so the same seed always gives the same split on any machine.

A stem in a split file that is absolute or holds a path separator or '..' is never opened
(see ``problems.unsafe_name``); the data check reports its line. Images are read upright by
their EXIF orientation and masks are turned the same way (see ``segkit.utils.images``).
"""
from __future__ import annotations

import hashlib
import os
import random
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..registry import DATASETS
from ..utils.images import IMAGE_EXTENSIONS, exif_orientation, orient_array, pil_to_rgb
from .paired import LabelledPairs, ValueTable, orphans_note, shown

__all__ = ["FolderDataset", "ColourTable", "parse_mask_values", "parse_mask_colors"]

Colour = Tuple[int, int, int]

# MASK_VALUES when neither it nor MASK_COLORS is given: binary 0/255 masks.
DEFAULT_MASK_VALUES = ((0, 0), (255, 1))


def parse_mask_values(pairs, ignore_value: Optional[int] = None) -> Dict[int, int]:
    """[[value, class], …] (or a {value: class} mapping) → {value: class}, checked."""
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs or [])
    mapping: Dict[int, int] = {}
    for pair in items:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(v, int) for v in pair)):
            raise ValueError(f"DATA.DATASET.MASK_VALUES: entry {pair!r} is not a [value, class] pair of ints; "
                             "expected e.g. [[0, 0], [255, 1]]")
        value, cls = pair
        if not 0 <= value <= 65535 or not 0 <= cls <= 254:
            raise ValueError(f"DATA.DATASET.MASK_VALUES: pair {list(pair)} out of range; mask values are "
                             "0..65535 and classes 0..254")
        if value in mapping:
            raise ValueError(f"DATA.DATASET.MASK_VALUES: mask value {value} is mapped twice")
        mapping[value] = cls
    if not mapping:
        raise ValueError("DATA.DATASET.MASK_VALUES is empty; expected [value, class] pairs, e.g. [[0, 0], [255, 1]]")
    if ignore_value is not None and ignore_value in mapping:
        raise ValueError(f"DATA.DATASET.IGNORE_VALUE {ignore_value} is also in MASK_VALUES; a value is "
                         "either a class or ignored")
    return mapping


def _is_colour(c) -> bool:
    return (isinstance(c, (list, tuple)) and len(c) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c))


def parse_mask_colors(entries, ignore_color=None) -> Dict[Colour, int]:
    """[[r, g, b, class], …] → {(r, g, b): class}, checked; ``ignore_color`` may not be listed."""
    mapping: Dict[Colour, int] = {}
    for entry in list(entries or []):
        ok = isinstance(entry, (list, tuple)) and len(entry) == 4 and _is_colour(entry[:3])
        if not (ok and isinstance(entry[3], int) and 0 <= entry[3] <= 254):
            raise ValueError(f"DATA.DATASET.MASK_COLORS: entry {entry!r} is not an [r, g, b, class] list; expected "
                             "colour values 0..255 and a class 0..254, e.g. [[0, 0, 0, 0], [128, 0, 0, 1]]")
        colour = tuple(entry[:3])
        if colour in mapping:
            raise ValueError(f"DATA.DATASET.MASK_COLORS: colour {list(colour)} is mapped twice")
        mapping[colour] = entry[3]
    if not mapping:
        raise ValueError("DATA.DATASET.MASK_COLORS is empty; expected [r, g, b, class] lists, e.g. "
                         "[[0, 0, 0, 0], [128, 0, 0, 1]]")
    if ignore_color is not None:
        if not _is_colour(ignore_color):
            raise ValueError(f"DATA.DATASET.IGNORE_COLOR {ignore_color!r} is not an [r, g, b] colour of ints 0..255")
        if tuple(ignore_color) in mapping:
            raise ValueError(f"DATA.DATASET.IGNORE_COLOR {list(ignore_color)} is also in MASK_COLORS; a colour is "
                             "either a class or ignored")
    return mapping


def _codes(rgb: np.ndarray) -> np.ndarray:
    """One int per pixel for an (H, W, 3) uint8 array, so colours compare as numbers."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _colour(code: int) -> Colour:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


class ColourTable:
    """RGB label colours → class ids; a palette PNG is read through its palette, so it may be
    drawn in either form. Any colour neither listed nor ``ignored`` becomes ``ignore_index``."""

    def __init__(self, colours: Mapping[Colour, int], ignored: Iterable[Colour], ignore_index: int):
        self.colours = {tuple(c): k for c, k in colours.items()}
        self.ignored, self.ignore_index = {tuple(c) for c in ignored}, ignore_index
        self.top_class = max(self.colours.values())
        self._by_code = {(r << 16) | (g << 8) | b: k for (r, g, b), k in self.colours.items()}
        self._known = set(self._by_code) | {(r << 16) | (g << 8) | b for r, g, b in self.ignored}
        identity = (sorted(self.colours.items()), sorted(self.ignored), ignore_index)
        self.key = hashlib.sha1(repr(identity).encode("utf-8")).hexdigest()

    @staticmethod
    def fits(raw: np.ndarray) -> bool:
        return raw.ndim == 3

    @staticmethod
    def read(path: str, orientation: int) -> np.ndarray:
        """(H, W, 3) colours, turned as ``read_label`` turns a label (its own tag, else its image's)."""
        with Image.open(path) as img:
            own = exif_orientation(img, default=None)
            rgb = pil_to_rgb(img)
        return orient_array(rgb, orientation if own is None else own)

    def ids(self, raw: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(_codes(raw), return_inverse=True)
        lut = np.array([self._by_code.get(c, self.ignore_index) for c in unique.tolist()], dtype=np.uint8)
        return lut[inverse].reshape(raw.shape[:2])

    def unknown(self, raw: np.ndarray) -> list:
        return [_colour(c) for c in np.unique(_codes(raw)).tolist() if c not in self._known]


def _palette_of(path: str) -> Tuple[str, Optional[List[int]]]:
    """A PNG's PIL mode and, for a palette image, its flat [r, g, b, …] palette."""
    try:
        with Image.open(path) as img:
            return img.mode, img.getpalette() if img.mode in ("P", "PA") else None
    except OSError:
        return "", None


@DATASETS.register(name="folder")
class FolderDataset(LabelledPairs):
    """Images and masks from ``<root>/images`` and ``<root>/masks`` with matching stems.

    Args:
        root, split, ignore_index, val_fraction, seed, strict, exclude: as for oxford_pet.
        mask_values: [[mask value, class id], …] for single-channel masks; default (when
            ``mask_colors`` is not given either) [[0, 0], [255, 1]], binary 0/255 masks.
        ignore_value: mask value meaning "not labelled" (becomes ``ignore_index``); None: none.
        mask_colors: [[r, g, b, class id], …] for colour masks (RGB, or palette PNGs read through
            their palette); excludes ``mask_values``.
        ignore_color: [r, g, b] meaning "not labelled" with ``mask_colors``; None: none.
        test_fraction: share of all stems held out as test when there is no test.txt.
        image_dir, mask_dir: sub-folder names under root.
    """

    CLASSES = ("background", "foreground")
    PALETTE = ((0, 0, 0), (255, 64, 64))
    LABEL_ROLE = "mask"
    LABEL_FILE = "a single-channel PNG mask"
    COLOUR_HINT = ("map its colours with DATA.DATASET.MASK_COLORS [[r, g, b, class], …] (and MASK_VALUES null), "
                   "or save class values in one channel")

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1,
                 seed: int = 42, mask_values: Optional[Sequence] = None, ignore_value: Optional[int] = None,
                 mask_colors: Optional[Sequence] = None, ignore_color: Optional[Sequence[int]] = None,
                 test_fraction: float = 0.1, image_dir: str = "images", mask_dir: str = "masks",
                 strict: bool = True, exclude: Iterable[str] = ()):
        super().__init__(root, split, ignore_index)
        cls = type(self).__name__
        for key, frac in (("DATA.VAL_FRACTION", val_fraction), ("DATA.DATASET.TEST_FRACTION", test_fraction)):
            if not 0.0 <= float(frac) <= 1.0:
                raise ValueError(f"{cls}: {key} {frac!r} must lie in [0, 1]")
        self._use_mapping(mask_values, ignore_value, mask_colors, ignore_color)
        self.val_fraction, self.test_fraction, self.seed = float(val_fraction), float(test_fraction), seed
        self.image_dir, self.mask_dir = os.path.join(self.root, image_dir), os.path.join(self.root, mask_dir)
        if not self.root or not os.path.isdir(self.image_dir):
            raise FileNotFoundError(f"{cls}: '{self.image_dir}' is not a folder; expected DATA.ROOT to hold "
                                    f"{image_dir}/ (images) and {mask_dir}/ (masks named <image stem>.png)")
        self.images = self._index_images()
        self.list_path = os.path.join(self.root, f"{split}.txt")
        listed = self._split_names()
        # A stem of a file in images/ is safe by construction; only split-file names are checked.
        self.take(listed, exclude, strict, self.unsafe_names(listed, safe=self.images))

    def _use_mapping(self, mask_values, ignore_value, mask_colors, ignore_color) -> None:
        """MASK_VALUES (single-channel masks) or MASK_COLORS (colour masks), never both."""
        cls = type(self).__name__
        # An empty list counts as unset, so a command line can clear a file's list ("[]"; null is refused there).
        if mask_colors is None or (not len(mask_colors) and mask_values):
            if ignore_color is not None:
                raise ValueError(f"{cls}: DATA.DATASET.IGNORE_COLOR {ignore_color!r} is set but MASK_COLORS is "
                                 "not; expected IGNORE_COLOR only with MASK_COLORS (colour masks), IGNORE_VALUE "
                                 "with MASK_VALUES")
            pairs = DEFAULT_MASK_VALUES if mask_values is None else mask_values
            self.mapping = parse_mask_values([list(p) for p in pairs], ignore_value)
            ignored = [] if ignore_value is None else [ignore_value]
            self.use_table(ValueTable(self.mapping, ignored, self.ignore_index), "in DATA.DATASET.MASK_VALUES")
            return
        if mask_values or ignore_value is not None:
            key = "MASK_VALUES" if mask_values else "IGNORE_VALUE"
            raise ValueError(f"{cls}: DATA.DATASET.MASK_COLORS and {key} are both set; expected one way to read "
                             f"masks: MASK_COLORS (with IGNORE_COLOR) for colour masks or MASK_VALUES (with "
                             f"IGNORE_VALUE) for single-channel ones: set {key} to null"
                             f"{' ([] on the command line)' if key == 'MASK_VALUES' else ''}")
        self.mapping = parse_mask_colors(mask_colors, ignore_color)
        ignored = [] if ignore_color is None else [tuple(ignore_color)]
        self.use_table(ColourTable(self.mapping, ignored, self.ignore_index), "in DATA.DATASET.MASK_COLORS")
        self.LABEL_FILE = "an RGB or palette PNG colour mask"

    # ------------------------------------------------------------------ layout
    def _index_images(self) -> Dict[str, str]:
        """stem → image file; the first by sorted name wins if two images share a stem."""
        out: Dict[str, str] = {}
        for f in sorted(os.listdir(self.image_dir)):
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTENSIONS and os.path.isfile(os.path.join(self.image_dir, f)):
                out.setdefault(stem, os.path.join(self.image_dir, f))
        return out

    def _read_list(self, split: str) -> Optional[List[str]]:
        return self.read_list(os.path.join(self.root, f"{split}.txt"), whole_line=True)

    @staticmethod
    def _held_out(names: List[str], fraction: float, seed: str) -> set:
        shuffled = sorted(names)
        random.Random(seed).shuffle(shuffled)
        return set(shuffled[:round(fraction * len(names))])

    def _split_names(self) -> List[str]:
        """This split's stems: its split file, or its seeded share of the images (see module doc)."""
        every = sorted(self.images)
        test = self._read_list("test")
        if test is None:
            test = sorted(self._held_out(every, self.test_fraction, f"{self.seed}-test"))
        if self.split == "test":
            return test
        pool = self._read_list("train")
        val = self._read_list("val")
        if pool is None:
            taken = set(test) | set(val or [])
            pool = [n for n in every if n not in taken]
        if val is None:
            held = self._held_out(pool, self.val_fraction, f"{self.seed}-val")
            val = [n for n in pool if n in held]
        if self.split == "val":
            return val
        val_set = set(val)
        return [n for n in pool if n not in val_set]

    def layout_need(self) -> str:
        return (f"Every sample needs an image in {os.path.basename(self.image_dir)}/ and "
                f"{os.path.basename(self.mask_dir)}/<stem>.png.")

    # ------------------------------------------------------------------ items
    def image_path(self, name: str) -> str:
        return self.images.get(name, os.path.join(self.image_dir, f"{name}.jpg"))

    def label_path(self, name: str) -> str:
        return os.path.join(self.mask_dir, f"{name}.png")

    mask_path = label_path

    # ------------------------------------------------------------------ checking
    def unknown_values(self, path: str, raw: np.ndarray, unknown: list) -> Tuple[str, str, str]:
        """The folder's own traps first: a greyscale mask read for colours, a 0/255 mask mapped as
        0/1, palette indices mapped as if they were colours; else the values or colours found."""
        mode, palette = _palette_of(path)
        if isinstance(self.table, ColourTable):
            listed = ", ".join(map(str, list(self.mapping)[:8])) + (", …" if len(self.mapping) > 8 else "")
            if mode in ("1", "L", "I", "I;16", "F"):
                return (f"is a single-channel (greyscale) PNG, read as grey colours {shown(unknown, 6)} not in "
                        "DATA.DATASET.MASK_COLORS", "an RGB or palette colour mask; for masks of class values use "
                        "MASK_VALUES [[value, class], …] (and MASK_COLORS null)", "mask_colors")
            return (f"has colours {shown(unknown, 8)} not in DATA.DATASET.MASK_COLORS",
                    f"only the listed colours {listed}: add each as [r, g, b, class] or mark it with IGNORE_COLOR",
                    "mask_colors")
        values = set(np.unique(raw).tolist())
        if values <= {0, 255} and unknown == [255] and 1 in self.mapping:
            return ("has values {" + shown(sorted(values)) + "}: it looks like a 0/255 binary mask",
                    f"values of DATA.DATASET.MASK_VALUES {sorted(self.mapping)}; map 255 with MASK_VALUES "
                    "[[0, 0], [255, 1]]", "mask_values")
        if palette is not None:
            colours = {v: tuple(palette[3 * v:3 * v + 3]) for v in sorted(values) if 3 * v + 3 <= len(palette)}
            channel_values = {c for colour in colours.values() for c in colour}
            if (set(self.mapping) - values - {0}) & channel_values:
                named = ", ".join(f"{v} = {colours[v]}" for v in unknown[:4] if v in colours)
                return (f"is a palette PNG whose pixel values {{{shown(unknown)}}} are palette indices, not in "
                        "DATA.DATASET.MASK_VALUES, which holds colour channel values",
                        f"MASK_VALUES of indices, not colours (here {named}): map the indices, or map the "
                        "colours with MASK_COLORS [[r, g, b, class], …] and MASK_VALUES null", "mask_values")
        allowed = set(self.mapping) | self.table.ignored
        return (f"has values {{{shown(unknown)}}} not in DATA.DATASET.MASK_VALUES", f"only {sorted(allowed)}",
                "mask_values")

    def find_notes(self) -> List[str]:
        """Masks without an image (nothing reads them)."""
        try:
            masks = sorted(f for f in os.listdir(self.mask_dir) if f.lower().endswith(".png"))
        except OSError:
            return []
        return orphans_note(f"{os.path.basename(self.mask_dir)}/", "mask",
                            [f for f in masks if os.path.splitext(f)[0] not in self.images])

    def __repr__(self) -> str:
        key = "mask_colors" if isinstance(self.table, ColourTable) else "mask_values"
        return (f"{type(self).__name__}(root='{self.root}', split='{self.split}', {len(self)} images, "
                f"{key}={self.mapping})")
