"""The Oxford-IIIT Pet dataset (Parkhi et al., CVPR 2012) read from its official layout.

    <root>/images/<Name>.jpg
    <root>/annotations/trimaps/<Name>.png      1 = pet, 2 = background, 3 = boundary
    <root>/annotations/trainval.txt, test.txt  lines "Name CLASS-ID SPECIES BREED-ID"

The official lists only have trainval and test, so the validation split is carved out of
trainval by a seeded shuffle: the same seed always holds out the same images, whatever
machine or worker count reads them.
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
from .cache import file_identity
from .problems import WORKERS, Problem, exif_size_note, name_problem, probe_file, scan

__all__ = ["OxfordPet", "read_name_list", "read_split_file", "raise_missing", "raise_unsafe_names",
           "BOUNDARY_MODES", "TORCHVISION_FOLDER"]

SPLITS = ("train", "val", "test")
# Trimap value 3 (the pet's outline) is ambiguous; each mode decides what the network learns there.
BOUNDARY_MODES = ("foreground", "background", "ignore", "class")
# torchvision's OxfordIIITPet downloads into <its root>/oxford-iiit-pet.
TORCHVISION_FOLDER = "oxford-iiit-pet"
TRIMAP_VALUES = (1, 2, 3)
# How many missing files a strict construction error names before "… and N more".
_MAX_LISTED = 20

_LAYOUT_HINT = ("expected the official Oxford-IIIT Pet layout: <root>/images/<Name>.jpg, "
                "<root>/annotations/trimaps/<Name>.png and <root>/annotations/{trainval,test}.txt. "
                "Point DATA.ROOT at that folder, or set DATA.DATASET.DOWNLOAD True to fetch it there")


def read_split_file(path: str, whole_line: bool = False) -> List[Tuple[int, str]]:
    """(line number, name) of every name in a split file, in file order.

    A name is the first field of its line (Oxford: "Name CLASS-ID SPECIES BREED-ID"), or with
    ``whole_line`` the whole stripped line (the folder layout's one stem per line, where a stem
    may hold spaces). Blank lines and lines starting with "#" are skipped; a UTF-8 byte-order
    mark (Windows editors write one) is dropped, so it never sticks to the first name.
    Duplicates are dropped (first occurrence kept) so a repeated line can never put one image
    into both train and val. Names are returned as written: see ``problems.unsafe_name`` for
    which ones the datasets refuse to open.
    """
    lines: Dict[str, int] = {}
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                lines.setdefault(line if whole_line else line.split()[0], number)
    return [(number, name) for name, number in lines.items()]


def read_name_list(path: str, whole_line: bool = False) -> List[str]:
    """The names of a split file (``read_split_file`` without the line numbers)."""
    return [name for _, name in read_split_file(path, whole_line)]


def _listed(lines: Sequence[str]) -> str:
    """The first _MAX_LISTED lines, indented one per line, and how many more there are."""
    more = f"\n  … and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
    return "".join(f"\n  {line}" for line in lines[:_MAX_LISTED]) + more


def raise_missing(dataset, missing: Sequence[str], where: str, need: str) -> None:
    """One FileNotFoundError listing (the first of) ``missing``, raised at build time rather
    than deep inside a loader worker; nothing when the list is empty."""
    if not missing:
        return
    raise FileNotFoundError(
        f"{type(dataset).__name__}: {len(missing)} file(s) {where} are missing:{_listed(missing)}\n{need} "
        "`segkit check-data` reports all bad files; DATA.SKIP_BAD True trains without them.")


def raise_unsafe_names(dataset, problems: Sequence[Problem]) -> None:
    """One ValueError naming every split-file line whose name cannot name a file inside the
    dataset root (``problems.name_problem``); nothing when there are none. Such a name's
    files are never opened, not even to see whether they exist."""
    if not problems:
        return
    raise ValueError(
        f"{type(dataset).__name__}: {len(problems)} name(s) in split files do not name a file inside "
        f"'{dataset.root}' (nothing was opened for them):{_listed([f'{p.path}: {p.found}' for p in problems])}"
        f"\nExpected {problems[0].expected}. "
        "`segkit check-data` reports all bad files; DATA.SKIP_BAD True trains without them.")


@DATASETS.register(name="oxford_pet")
class OxfordPet(torch.utils.data.Dataset):
    """Oxford-IIIT Pet images with binary pet masks made from the trimaps.

    Args:
        root: folder holding ``images/`` and ``annotations/``; a folder holding torchvision's
            ``oxford-iiit-pet/`` download is accepted too.
        split: "train", "val" (both from trainval.txt) or "test" (test.txt).
        ignore_index: mask value for pixels left out of loss and metrics (2..255).
        val_fraction: share of trainval held out as val, chosen by ``random.Random(seed)``.
        seed: seed of that choice.
        boundary: what trimap value 3 becomes: "foreground" (1), "background" (0),
            "ignore" (``ignore_index``) or "class" (2, a third class: the 3-class trimap task).
        download: fetch the dataset with torchvision when ``root`` lacks it. Files land in
            ``<root>/oxford-iiit-pet/`` (or in ``root`` itself when it is already named
            ``oxford-iiit-pet``); both are found by later runs with the same DATA.ROOT.
        strict: fail at construction, naming every missing file (and a missing list file).
            False builds anyway, so ``find_problems`` can report everything in one scan.
        exclude: names to leave out (the bad samples DATA.SKIP_BAD skips). Applied after the
            train/val split is drawn, so skipping a sample never moves others between splits.

    A listed name that is absolute or holds a path separator or '..' (``problems.unsafe_name``)
    is never opened: strict construction raises naming its line, otherwise it is a Problem of
    that sample for ``find_problems`` (DATA.SKIP_BAD can leave it out like any bad sample).

    Images are read upright by their EXIF orientation, and each trimap is turned the same way
    (see ``segkit.utils.images``).
    """

    # Labels 0, 1 (binary) and 2 (BOUNDARY class); a binary model names the first two.
    CLASSES = ("background", "pet", "boundary")
    PALETTE = ((0, 0, 0), (255, 64, 64), (64, 160, 255))

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1,
                 seed: int = 42, boundary: str = "foreground", download: bool = False,
                 strict: bool = True, exclude: Iterable[str] = ()):
        if split not in SPLITS:
            raise ValueError(f"{type(self).__name__}: split '{split}' is not one of {list(SPLITS)}")
        if boundary not in BOUNDARY_MODES:
            raise ValueError(f"{type(self).__name__}: boundary '{boundary}' is not one of "
                             f"{list(BOUNDARY_MODES)} (DATA.DATASET.BOUNDARY)")
        if not (isinstance(ignore_index, int) and 2 <= ignore_index <= 255):
            raise ValueError(f"{type(self).__name__}: ignore_index {ignore_index!r} must be an int in "
                             "2..255 (0 and 1 are the class labels; masks are uint8)")
        if not 0.0 <= float(val_fraction) <= 1.0:
            raise ValueError(f"{type(self).__name__}: val_fraction {val_fraction!r} must lie in [0, 1]")
        self.split, self.ignore_index, self.boundary = split, ignore_index, boundary
        self.val_fraction, self.seed, self.strict = float(val_fraction), seed, strict
        self.root = self._find_root(str(root), download)
        self.list_path = os.path.join(self.root, "annotations", "test.txt" if split == "test" else "trainval.txt")
        self._list_problem: Optional[Problem] = None
        self._lines: Dict[str, int] = {}  # name → its line in the list file
        dropped = set(exclude)
        # Unsafe names take part in the train/val draw like any line (fixing one in place moves
        # no other sample between splits), then are set aside, never to be opened.
        listed = self._split_names()
        unsafe = {n: p for n in listed if (p := name_problem(self.list_path, self._lines.get(n, 0), n))}
        self.names: List[str] = [n for n in listed if n not in dropped and n not in unsafe]
        self._name_problems: List[Problem] = [p for n, p in unsafe.items() if n not in dropped]
        if strict:
            raise_unsafe_names(self, self._name_problems)
            self._check_files()
        self._lut = self._make_lut()

    # ------------------------------------------------------------------ layout
    @staticmethod
    def _has_layout(path: str) -> bool:
        return os.path.isdir(os.path.join(path, "images")) and os.path.isdir(os.path.join(path, "annotations"))

    def _find_root(self, root: str, download: bool) -> str:
        if not root:
            raise FileNotFoundError(f"{type(self).__name__}: DATA.ROOT is empty; {_LAYOUT_HINT}.")
        nested = os.path.join(root, TORCHVISION_FOLDER)
        for candidate in (root, nested):
            if self._has_layout(candidate):
                return candidate
        if download:
            return self._download(root)
        what = "does not exist" if not os.path.exists(root) else "lacks images/ or annotations/"
        raise FileNotFoundError(f"{type(self).__name__}: dataset root '{root}' {what}; {_LAYOUT_HINT}.")

    def _download(self, root: str) -> str:
        """Fetch with torchvision, which always writes into ``<its root>/oxford-iiit-pet``."""
        from torchvision.datasets import OxfordIIITPet

        root = os.path.abspath(root)
        if os.path.basename(root.rstrip(os.sep)) == TORCHVISION_FOLDER:
            parent, target = os.path.dirname(root), root
        else:
            parent, target = root, os.path.join(root, TORCHVISION_FOLDER)
        os.makedirs(parent, exist_ok=True)
        OxfordIIITPet(root=parent, split="trainval", target_types="segmentation", download=True)
        if not self._has_layout(target):
            raise FileNotFoundError(f"{type(self).__name__}: download finished but '{target}' lacks "
                                    f"images/ or annotations/; {_LAYOUT_HINT}.")
        return target

    def _split_names(self) -> List[str]:
        """This split's names. An absent or unreadable list raises when strict; otherwise it is
        kept as a Problem for ``find_problems`` and the split is empty."""
        path, cls = self.list_path, type(self).__name__
        try:
            lines = read_split_file(path)
        except FileNotFoundError:
            found, error = "does not exist", FileNotFoundError(
                f"{cls}: list file '{path}' does not exist; {_LAYOUT_HINT}.")
        except (OSError, UnicodeDecodeError) as e:
            found, error = f"cannot be read ({e})", ValueError(
                f"{cls}: cannot read list file '{path}' ({e}); expected UTF-8 text with one "
                "'Name CLASS-ID SPECIES BREED-ID' line per image")
        else:
            self._lines = {name: number for number, name in lines}
            return self._select([name for _, name in lines])
        if self.strict:
            raise error
        self._list_problem = Problem(path, found, "a text file listing this split's images (Oxford layout)",
                                     role="split list", kind="split")
        return []

    def _select(self, names: List[str]) -> List[str]:
        """This split's share of a list file: test is all of it, train and val divide trainval."""
        if self.split == "test":
            return names
        shuffled = list(names)
        random.Random(self.seed).shuffle(shuffled)
        held_out = set(shuffled[:round(self.val_fraction * len(names))])
        # Both splits keep the list file's order, so names read the same in logs and dumps.
        return [n for n in names if (n in held_out) == (self.split == "val")]

    def _check_files(self) -> None:
        """Fail at build time, naming every missing file, rather than deep inside a loader worker."""
        missing = [p for n in self.names for p in (self.image_path(n), self.trimap_path(n))
                   if not os.path.exists(p)]
        raise_missing(self, missing, f"listed for split '{self.split}' in '{self.list_path}'",
                      f"Every name in the list needs images/<Name>.jpg and annotations/trimaps/<Name>.png "
                      f"under '{self.root}'.")

    def _make_lut(self) -> np.ndarray:
        """Trimap value → mask label; every value Oxford does not define becomes ignore."""
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        lut[1], lut[2] = 1, 0
        # "class": the outline is class 2 (0 background, 1 pet, 2 boundary; MODEL.NUM_CLASSES 3).
        lut[3] = {"foreground": 1, "background": 0, "ignore": self.ignore_index, "class": 2}[self.boundary]
        return lut

    # ------------------------------------------------------------------ items
    def image_path(self, name: str) -> str:
        return os.path.join(self.root, "images", f"{name}.jpg")

    def trimap_path(self, name: str) -> str:
        return os.path.join(self.root, "annotations", "trimaps", f"{name}.png")

    def read_trimap(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """The trimap's raw pixel values, fully decoded (``load_mask`` and the check share this),
        turned like its image: by the trimap's own EXIF orientation if it has one, else by the
        image's, ``image_orientation`` (None: read from the image file), since the Oxford trimaps
        were drawn on the stored pixels of their images."""
        path = self.trimap_path(name)
        if image_orientation is None:
            image_orientation = read_orientation(self.image_path(name))
        try:
            return read_label(path, image_orientation)
        except FileNotFoundError:
            raise FileNotFoundError(f"Trimap '{path}' does not exist; expected a single-channel PNG "
                                    "with 1 = pet, 2 = background, 3 = boundary") from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RuntimeError(f"Cannot read trimap '{path}' ({e}); expected a single-channel PNG") from e

    def load_mask(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """The label mask of ``name``, upright like its image (see ``read_trimap``)."""
        path, trimap = self.trimap_path(name), self.read_trimap(name, image_orientation)
        if trimap.ndim != 2:
            raise ValueError(f"Trimap '{path}' has shape {trimap.shape}; expected a single-channel "
                             "image with 1 = pet, 2 = background, 3 = boundary")
        if trimap.dtype == np.uint8:
            return self._lut[trimap]
        trimap = trimap.astype(np.int64)
        inside = (trimap >= 0) & (trimap < 256)
        return np.where(inside, self._lut[np.clip(trimap, 0, 255)], self.ignore_index).astype(np.uint8)

    def label(self, index: int) -> np.ndarray:
        """Item ``index``'s mask alone: the trimap is decoded, the image's pixels are not (only its
        EXIF orientation is read), for passes that count class pixels."""
        return self.load_mask(self.names[index])

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Dict[str, object]:
        return self.load_item(index)

    def load_item(self, index: int, draft_size: Optional[int] = None) -> Dict[str, object]:
        """The item at ``index``; with ``draft_size`` the image may come decoded at a reduced
        scale of at least that size (see ``decode_image``), for the data cache to resize."""
        name = self.names[index]
        decoded = decode_image(self.image_path(name), draft_size)
        mask = self.load_mask(name, decoded.orientation)
        (iw, ih), (mh, mw) = decoded.size, mask.shape
        if (ih, iw) != mask.shape:
            raise ValueError(f"Image '{self.image_path(name)}' is {iw}x{ih} but trimap '{self.trimap_path(name)}' "
                             f"is {mw}x{mh}; expected equal sizes{exif_size_note(decoded.orientation)}")
        return {"image": decoded.rgb, "mask": mask, "name": name}

    def cache_identity(self, index: int) -> tuple:
        """What ``load_item(index)`` depends on, for the data cache's key: both files' path,
        mtime and size, and the trimap-to-label mapping (a subclass that changes how items
        are made must add what it depends on)."""
        name = self.names[index]
        return (type(self).__qualname__, name, file_identity(self.image_path(name)),
                file_identity(self.trimap_path(name)), self._lut.tobytes().hex())

    # ------------------------------------------------------------------ checking
    def find_problems(self, workers: int = WORKERS) -> List[Problem]:
        """Every problem with this split, found by fully decoding each listed image and trimap.

        Uses the loaders ``__getitem__`` uses, so a sample that passes here also loads in
        training. Problems come in list order; nothing is raised for bad data.
        """
        head = [self._list_problem] if self._list_problem else []
        return head + self._name_problems + scan(self.names, self._sample_problems, workers)

    def _sample_problems(self, name: str) -> List[Problem]:
        listed = f"{os.path.basename(self.list_path)} lists '{name}'"
        decoded, problems = probe_file(self.image_path(name), decode_image, name, "image",
                                       "a JPEG, PNG or GIF image", listed)
        image, orientation = (None, 1) if decoded is None else (decoded.rgb, decoded.orientation)
        trimap, more = probe_file(self.trimap_path(name), lambda p: self.read_trimap(name, orientation), name,
                                  "trimap", "a single-channel PNG trimap", listed)
        problems += more
        if trimap is None:
            return problems
        path = self.trimap_path(name)
        if trimap.ndim != 2:
            return problems + [Problem(path, f"has shape {trimap.shape}", "a single-channel image (H x W)",
                                       name, "trimap", "channels")]
        values = np.unique(trimap).tolist()
        if not set(values) <= set(TRIMAP_VALUES):
            shown = ", ".join(map(str, values[:12])) + (", …" if len(values) > 12 else "")
            problems.append(Problem(path, f"values {{{shown}}} outside {{1, 2, 3}}",
                                    "only 1 = pet, 2 = background, 3 = boundary", name, "trimap", "values"))
        if image is not None and image.shape[:2] != trimap.shape:
            (ih, iw), (th, tw) = image.shape[:2], trimap.shape
            problems.append(Problem(path, f"is {tw}x{th} pixels",
                                    f"{iw}x{ih}, the size of its image images/{name}.jpg"
                                    f"{exif_size_note(orientation)}", name, "trimap", "size"))
        return problems

    def find_notes(self) -> List[str]:
        """Harmless oddities of the folder: files in images/ that nothing reads.

        The full Oxford download has a few .mat files in images/ that no list names; they are
        ignored rather than reported as errors.
        """
        image_dir = os.path.join(self.root, "images")
        try:
            files = sorted(f for f in os.listdir(image_dir) if os.path.isfile(os.path.join(image_dir, f)))
        except OSError:
            return []
        listed = set()
        for list_name in ("trainval.txt", "test.txt"):
            try:
                listed.update(read_name_list(os.path.join(self.root, "annotations", list_name)))
            except (OSError, UnicodeDecodeError):
                pass
        notes = [f"images/{f}: {'not an image' if not f.lower().endswith(IMAGE_EXTENSIONS) else 'not a .jpg'}"
                 "; ignored (only images/<Name>.jpg of listed names are read)"
                 for f in files if not f.endswith(".jpg")]
        unlisted = [f for f in files if f.endswith(".jpg") and f[:-4] not in listed]
        if unlisted:
            examples = ", ".join(unlisted[:3]) + (", …" if len(unlisted) > 3 else "")
            notes.append(f"images/: {len(unlisted)} image(s) in no split list ({examples}); ignored")
        return notes

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root='{self.root}', split='{self.split}', {len(self)} images, "
                f"boundary='{self.boundary}', ignore_index={self.ignore_index})")
