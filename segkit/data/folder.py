"""Your own data: a folder of images and masks with matching file names, trained with no code.

    <root>/images/<stem>.<jpg|png|tif|…>     any format PIL reads, any mode (see ``load_rgb``)
    <root>/masks/<stem>.png                   one channel (greyscale or palette), one value per class
    <root>/train.txt, val.txt, test.txt       optional: one stem per line (the whole line: stems
                                              may hold spaces; blank and "#" lines are skipped)

Mask pixel values become class ids through ``mask_values`` (DATA.DATASET.MASK_VALUES), a list of
[value, class] pairs, so 0/255 masks and 0/1/2 masks need no conversion; ``ignore_value``
names the value meaning "not labelled". Any value the mapping lacks is ignored in training
and reported by ``segkit check-data``.

Splits: a split file, where present, lists that split. Otherwise ``test_fraction`` of all
stems is held out as test and ``val_fraction`` of the rest as val, by a shuffle seeded with
SEED, so the same seed always gives the same split on any machine.

A stem in a split file that is absolute or holds a path separator or '..' is never opened
(see ``problems.unsafe_name``); the data check reports its line. Images are read upright by
their EXIF orientation and masks are turned the same way (see ``segkit.utils.images``).
"""
from __future__ import annotations

import os
import random
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import UnidentifiedImageError

from ..registry import DATASETS
from ..utils.images import IMAGE_EXTENSIONS, decode_image, read_label, read_orientation
from .oxford_pet import raise_missing, raise_unsafe_names, read_split_file
from .problems import WORKERS, Problem, exif_size_note, name_problem, probe_file, scan

__all__ = ["FolderDataset", "parse_mask_values"]

SPLITS = ("train", "val", "test")


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


@DATASETS.register(name="folder")
class FolderDataset(torch.utils.data.Dataset):
    """Images and masks from ``<root>/images`` and ``<root>/masks`` with matching stems.

    Args:
        root, split, ignore_index, val_fraction, seed, strict, exclude: as for oxford_pet.
        mask_values: [[mask value, class id], …]; default [[0, 0], [255, 1]] (binary 0/255 masks).
        ignore_value: mask value meaning "not labelled" (becomes ``ignore_index``); None: none.
        test_fraction: share of all stems held out as test when there is no test.txt.
        image_dir, mask_dir: sub-folder names under root.
    """

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1,
                 seed: int = 42, mask_values: Sequence = ((0, 0), (255, 1)), ignore_value: Optional[int] = None,
                 test_fraction: float = 0.1, image_dir: str = "images", mask_dir: str = "masks",
                 strict: bool = True, exclude: Iterable[str] = ()):
        cls = type(self).__name__
        if split not in SPLITS:
            raise ValueError(f"{cls}: split '{split}' is not one of {list(SPLITS)}")
        for key, frac in (("DATA.VAL_FRACTION", val_fraction), ("DATA.DATASET.TEST_FRACTION", test_fraction)):
            if not 0.0 <= float(frac) <= 1.0:
                raise ValueError(f"{cls}: {key} {frac!r} must lie in [0, 1]")
        self.mapping = parse_mask_values([list(p) for p in mask_values], ignore_value)
        if max(self.mapping.values()) >= ignore_index:
            raise ValueError(f"{cls}: class {max(self.mapping.values())} in DATA.DATASET.MASK_VALUES is not below "
                             f"DATA.IGNORE_INDEX {ignore_index}")
        self.root, self.split, self.ignore_index, self.ignore_value = str(root), split, ignore_index, ignore_value
        self.val_fraction, self.test_fraction, self.seed = float(val_fraction), float(test_fraction), seed
        self.image_dir, self.mask_dir = os.path.join(self.root, image_dir), os.path.join(self.root, mask_dir)
        if not self.root or not os.path.isdir(self.image_dir):
            raise FileNotFoundError(f"{cls}: '{self.image_dir}' is not a folder; expected DATA.ROOT to hold "
                                    f"{image_dir}/ (images) and {mask_dir}/ (masks named <image stem>.png)")
        self.images = self._index_images()
        self.list_path = os.path.join(self.root, f"{split}.txt")
        self._list_problems: List[Problem] = []
        self._listed: Dict[str, Dict[str, int]] = {}  # split file read → {stem: its line}
        dropped = set(exclude)
        listed = self._split_names()
        # A stem of a file in images/ is safe by construction; only split-file names are checked.
        unsafe = {n: p for n in listed if n not in self.images and (p := name_problem(*self._line_of(n), n))}
        self.names = [n for n in listed if n not in dropped and n not in unsafe]
        self._list_problems += [p for n, p in unsafe.items() if n not in dropped]
        if strict:
            raise_unsafe_names(self, [p for p in self._list_problems if p.kind == "name"])
            self._check_files()
        self._lut = self._make_lut()

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
        path = os.path.join(self.root, f"{split}.txt")
        if not os.path.exists(path):
            return None
        try:
            lines = read_split_file(path, whole_line=True)
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{type(self).__name__}: cannot read split file '{path}' ({e}); expected UTF-8 text, "
                             "one image stem per line") from e
        self._listed[path] = {name: number for number, name in lines}
        return [name for _, name in lines]

    def _line_of(self, name: str) -> Tuple[str, int]:
        """The split file and line that listed ``name``: this split's own file first."""
        for path in (self.list_path, *self._listed):
            if name in self._listed.get(path, ()):
                return path, self._listed[path][name]
        return self.list_path, 0

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

    def _check_files(self) -> None:
        missing = [p for n in self.names for p in (self.image_path(n), self.mask_path(n)) if not os.path.exists(p)]
        raise_missing(self, missing, f"of split '{self.split}' under '{self.root}'",
                      f"Every sample needs an image in {os.path.basename(self.image_dir)}/ and "
                      f"{os.path.basename(self.mask_dir)}/<stem>.png.")

    def _make_lut(self) -> np.ndarray:
        """Mask value → class id for 16-bit range; unmapped values become ignore_index."""
        lut = np.full(65536, self.ignore_index, dtype=np.uint8)
        for value, cls in self.mapping.items():
            lut[value] = cls
        return lut

    # ------------------------------------------------------------------ items
    def image_path(self, name: str) -> str:
        return self.images.get(name, os.path.join(self.image_dir, f"{name}.jpg"))

    def mask_path(self, name: str) -> str:
        return os.path.join(self.mask_dir, f"{name}.png")

    def read_mask(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """The mask's raw pixel values (palette PNGs give their indices), turned like its image:
        by the mask's own EXIF orientation if it has one, else by the image's,
        ``image_orientation`` (None: read from the image file)."""
        path = self.mask_path(name)
        if image_orientation is None:
            image_orientation = read_orientation(self.image_path(name))
        try:
            return read_label(path, image_orientation)
        except FileNotFoundError:
            raise FileNotFoundError(f"Mask '{path}' does not exist; expected a single-channel PNG") from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RuntimeError(f"Cannot read mask '{path}' ({e}); expected a single-channel PNG") from e

    def load_mask(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """Class ids of ``name``'s mask, upright like its image (see ``read_mask``)."""
        raw = self.read_mask(name, image_orientation)
        if raw.ndim != 2:
            raise ValueError(f"Mask '{self.mask_path(name)}' has shape {raw.shape}; expected a single-channel "
                             "(greyscale or palette) PNG")
        raw = raw.astype(np.int64)
        return np.where((raw >= 0) & (raw < 65536), self._lut[np.clip(raw, 0, 65535)],
                        self.ignore_index).astype(np.uint8)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Dict[str, object]:
        name = self.names[index]
        decoded = decode_image(self.image_path(name))
        image, mask = decoded.rgb, self.load_mask(name, decoded.orientation)
        if image.shape[:2] != mask.shape:
            (ih, iw), (mh, mw) = image.shape[:2], mask.shape
            raise ValueError(f"Image '{self.image_path(name)}' is {iw}x{ih} but mask '{self.mask_path(name)}' "
                             f"is {mw}x{mh}; expected equal sizes{exif_size_note(decoded.orientation)}")
        return {"image": image, "mask": mask, "name": name}

    # ------------------------------------------------------------------ checking
    def find_problems(self, workers: int = WORKERS) -> List[Problem]:
        """Every problem of this split, found by decoding each image and mask as training would."""
        return self._list_problems + scan(self.names, self._sample_problems, workers)

    def _sample_problems(self, name: str) -> List[Problem]:
        why = f"sample '{name}' is in split '{self.split}'"
        decoded, problems = probe_file(self.image_path(name), decode_image, name, "image", "an image file", why)
        image, orientation = (None, 1) if decoded is None else (decoded.rgb, decoded.orientation)
        mask, more = probe_file(self.mask_path(name), lambda p: self.read_mask(name, orientation), name, "mask",
                                "a single-channel PNG mask", why)
        problems += more
        if mask is None:
            return problems
        path = self.mask_path(name)
        if mask.ndim != 2:
            return problems + [Problem(path, f"has shape {mask.shape}", "a single-channel (greyscale or palette) PNG",
                                       name, "mask", "mask_channels")]
        allowed = set(self.mapping) | ({self.ignore_value} if self.ignore_value is not None else set())
        values = np.unique(mask).tolist()
        bad = [v for v in values if v not in allowed]
        if bad:
            shown = ", ".join(map(str, bad[:12])) + (", …" if len(bad) > 12 else "")
            problems.append(Problem(path, f"has values {{{shown}}} not in DATA.DATASET.MASK_VALUES",
                                    f"only {sorted(allowed)}", name, "mask", "mask_values"))
        if image is not None and image.shape[:2] != mask.shape:
            (ih, iw), (mh, mw) = image.shape[:2], mask.shape
            problems.append(Problem(path, f"is {mw}x{mh} pixels",
                                    f"{iw}x{ih}, the size of its image{exif_size_note(orientation)}",
                                    name, "mask", "mask_size"))
        return problems

    def find_notes(self) -> List[str]:
        """Masks without an image (nothing reads them)."""
        try:
            masks = sorted(f for f in os.listdir(self.mask_dir) if f.lower().endswith(".png"))
        except OSError:
            return []
        orphans = [f for f in masks if os.path.splitext(f)[0] not in self.images]
        if not orphans:
            return []
        examples = ", ".join(orphans[:3]) + (", …" if len(orphans) > 3 else "")
        return [f"{os.path.basename(self.mask_dir)}/: {len(orphans)} mask(s) without an image ({examples}); ignored"]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root='{self.root}', split='{self.split}', {len(self)} images, "
                f"mask_values={self.mapping})")
