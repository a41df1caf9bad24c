"""Datasets of (image file, label file) pairs whose label values become class ids through a table.

The folder dataset and the dataset zoo (CamVid, PASCAL VOC, ADE20K, Cityscapes) differ only in
where their files lie and what their label values mean. Reading an item, reading its label alone
(for class statistics), its cache key, and the per-sample data check are therefore written once,
here: a subclass finds its samples and splits, names each sample's two files (``image_path``,
``label_path``) and picks a table (``ValueTable`` for single-channel ids; the folder dataset's
``ColourTable`` for colour masks); ``LabelledPairs`` does the rest, and ``SplitFolders`` also finds the samples of
datasets whose splits are folders.

The data check words the classic label traps (the mmseg issue tracker is full of them) as one
line that says the fix: a colour mask where single-channel ids are expected (``COLOUR_HINT`` names
the file of the download that holds the ids), a greyscale mask saved as RGB, values a table does
not define. A dataset whose table the user writes adds its own (``unknown_values``).
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import UnidentifiedImageError

from ..utils.images import decode_image, read_label, read_orientation
from .cache import file_identity
from .oxford_pet import raise_missing, raise_unsafe_names, read_split_file
from .problems import WORKERS, Problem, exif_size_note, name_problem, probe_file, scan

__all__ = ["LabelledPairs", "SplitFolders", "ValueTable", "SPLITS", "shown", "stems_under", "orphans_note"]

SPLITS = ("train", "val", "test")


def shown(values: Sequence, limit: int = 12) -> str:
    """The first ``limit`` values, comma-separated, "…" when there are more: for messages."""
    return ", ".join(map(str, values[:limit])) + (", …" if len(values) > limit else "")


class ValueTable:
    """Single-channel label values (greyscale, palette indices, 16-bit) → class ids.

    ``classes`` maps a value to its class and ``ignored`` values mean "not labelled"; both become
    ids in training (ignored ones ``ignore_index``), and so does any other value, which the data
    check reports (``unknown``) since it is more likely a broken file than a choice. A table is
    anything with this interface: ``fits``, ``read``, ``ids``, ``unknown``, ``key``, ``top_class``.
    """

    def __init__(self, classes: Mapping[int, int], ignored: Iterable[int], ignore_index: int):
        self.classes, self.ignored, self.ignore_index = dict(classes), set(ignored), ignore_index
        self.top_class = max(self.classes.values())
        self.lut = np.full(65536, ignore_index, dtype=np.uint8)
        for value, cls in self.classes.items():
            self.lut[value] = cls
        self.key = hashlib.sha1(self.lut.tobytes()).hexdigest()

    @staticmethod
    def fits(raw: np.ndarray) -> bool:
        return raw.ndim == 2

    @staticmethod
    def read(path: str, orientation: int) -> np.ndarray:
        return read_label(path, orientation)

    def ids(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype in (np.uint8, np.uint16):
            return self.lut[raw]
        raw = raw.astype(np.int64)
        return np.where((raw >= 0) & (raw < 65536), self.lut[np.clip(raw, 0, 65535)],
                        self.ignore_index).astype(np.uint8)

    def unknown(self, raw: np.ndarray) -> list:
        return [v for v in np.unique(raw).tolist() if v not in self.classes and v not in self.ignored]


def stems_under(folder: str, suffix: str, depth: int = 0) -> List[str]:
    """Names of the files ending in ``suffix`` in ``folder`` (``depth`` 1: in its sub-folders, named
    ``<sub>/<stem>``), sorted; the name is the file name without the suffix."""
    out = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if depth and os.path.isdir(path):
            out += [f"{entry}/{name}" for name in stems_under(path, suffix, depth - 1)]
        elif not depth and entry.endswith(suffix) and len(entry) > len(suffix) and os.path.isfile(path):
            out.append(entry[: -len(suffix)])
    return out


def orphans_note(where: str, what: str, orphans: Sequence[str]) -> List[str]:
    """The note for label files no image pairs with (nothing reads them), or none."""
    if not orphans:
        return []
    return [f"{where}: {len(orphans)} {what}(s) without an image ({shown(list(orphans), 3)}); ignored"]


class LabelledPairs(torch.utils.data.Dataset):
    """Items made of an image file and a label file, the label's values mapped by ``self.table``.

    A subclass calls ``__init__`` first, sets ``self.root`` (``locate``) and the table
    (``use_table``), then hands its split's names to ``take``; it defines ``image_path`` and
    ``label_path``. Items are ``{"image": HxWx3 uint8 RGB, "mask": HxW uint8 class ids with
    ignore_index where unlabelled, "name": str}``; ``label(i)`` is item i's mask alone.
    """

    CLASSES: Tuple[str, ...] = ()
    PALETTE: Tuple[Tuple[int, int, int], ...] = ()
    # What a label file is called in messages, and what it must be.
    LABEL_ROLE = "label"
    LABEL_FILE = "a single-channel PNG of class ids"
    # The colour-mask trap's fix: which file of the download holds single-channel ids.
    COLOUR_HINT = "use the dataset's single-channel label files"
    # The values a label may hold, for the data check's "expected".
    LABEL_IDS = "the dataset's label ids"
    # Where to get the dataset and how DATA.ROOT must look, for a missing root.
    HOME = "expected DATA.ROOT to hold the dataset"

    def __init__(self, root: str, split: str, ignore_index: int = 255):
        cls = type(self).__name__
        if split not in SPLITS:
            raise ValueError(f"{cls}: split '{split}' is not one of {list(SPLITS)}")
        if not (isinstance(ignore_index, int) and 0 <= ignore_index <= 255):
            raise ValueError(f"{cls}: DATA.IGNORE_INDEX {ignore_index!r} must be an int in 0..255 (masks are uint8)")
        self.root, self.split, self.ignore_index = str(root), split, ignore_index
        self.names: List[str] = []
        self.list_path = self.root  # what an empty split's Problem names
        self.table = None
        self._list_problems: List[Problem] = []
        self._listed: Dict[str, Dict[str, int]] = {}  # split file read → {name: its line}

    # ------------------------------------------------------------------ what a subclass names
    def image_path(self, name: str) -> str:
        raise NotImplementedError

    def label_path(self, name: str) -> str:
        raise NotImplementedError

    def layout_need(self) -> str:
        """The sentence after a missing-files error: what every sample needs."""
        return f"Every sample needs its image and its {self.LABEL_ROLE} file; {self.HOME}."

    def download(self, root: str) -> str:
        raise FileNotFoundError(f"{type(self).__name__} has no automatic download; {self.HOME}")

    # ------------------------------------------------------------------ construction
    def locate(self, root: str, nested: Sequence[str], required: Sequence[str], download: bool = False) -> str:
        """The folder holding the layout: ``root`` or ``root/<one of nested>`` (downloads come wrapped
        in a folder or two, and users point DATA.ROOT at either level); fetched with ``download``."""
        cls = type(self).__name__
        if not root:
            raise FileNotFoundError(f"{cls}: DATA.ROOT is empty; {self.HOME}")
        for sub in ("", *nested):
            path = os.path.join(root, sub) if sub else root
            if all(os.path.isdir(os.path.join(path, r)) for r in required):
                return path
        if download:
            return self.download(root)
        folders = " and ".join(f"{r}/" for r in required)
        what = "does not exist" if not os.path.exists(root) else (
            f"holds no {folders}" + (f" (nor does {' or '.join(f'{n}/' for n in nested)} inside it)" if nested else ""))
        raise FileNotFoundError(f"{cls}: dataset root '{root}' {what}; {self.HOME}")

    def use_table(self, table, source: str) -> None:
        """Use ``table``; its classes must lie below the ignore index (``source`` names where they come from)."""
        if table.top_class >= self.ignore_index:
            raise ValueError(f"{type(self).__name__}: class {table.top_class} {source} is not below "
                             f"DATA.IGNORE_INDEX {self.ignore_index}; expected an ignore index above every class")
        self.table = table

    def read_list(self, path: str, whole_line: bool = False) -> Optional[List[str]]:
        """The names of split file ``path`` (see ``read_split_file``), remembering their lines for
        ``line_of``; None when the file does not exist."""
        if not os.path.exists(path):
            return None
        try:
            lines = read_split_file(path, whole_line)
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{type(self).__name__}: cannot read split file '{path}' ({e}); expected UTF-8 text, "
                             "one sample name per line") from e
        self._listed[path] = {name: number for number, name in lines}
        return [name for _, name in lines]

    def line_of(self, name: str) -> Tuple[str, int]:
        """The split file and line that listed ``name``: this split's own file first."""
        for path in (self.list_path, *self._listed):
            if name in self._listed.get(path, ()):
                return path, self._listed[path][name]
        return self.list_path, 0

    def unsafe_names(self, listed: Iterable[str], safe: Iterable[str] = ()) -> Dict[str, Problem]:
        """The listed names that cannot name a file inside the root (``problems.unsafe_name``);
        names in ``safe`` (those of files found on disk) are safe by construction."""
        safe = set(safe)
        return {n: p for n in listed if n not in safe and (p := name_problem(*self.line_of(n), n))}

    def missing_split(self, path: str, expected: str, strict: bool) -> None:
        """A split's list file or folder is absent: an error naming it when ``strict``, else a
        Problem of the whole split for the data check (the split is then empty)."""
        if strict:
            raise FileNotFoundError(f"{type(self).__name__}: '{path}' does not exist; expected {expected}")
        self._list_problems.append(Problem(path, "does not exist", expected, role="split list", kind="split"))

    def take(self, listed: Sequence[str], exclude: Iterable[str] = (), strict: bool = True,
             unsafe: Optional[Mapping[str, Problem]] = None) -> None:
        """This split's samples: ``listed`` without the ``exclude``d and ``unsafe`` names. Strict:
        one error naming every unsafe name, then one naming every missing file, at build time
        rather than deep inside a loader worker; otherwise the data check reports them."""
        unsafe, dropped = dict(unsafe or {}), set(exclude)
        self.names = [n for n in listed if n not in dropped and n not in unsafe]
        self._list_problems += [p for n, p in unsafe.items() if n not in dropped]
        if strict:
            raise_unsafe_names(self, [p for p in self._list_problems if p.kind == "name"])
            missing = [p for n in self.names for p in (self.image_path(n), self.label_path(n)) if not os.path.exists(p)]
            raise_missing(self, missing, f"of split '{self.split}' under '{self.root}'", self.layout_need())

    # ------------------------------------------------------------------ items
    def read_raw_label(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """The label file's pixels as the table reads them, turned like its image: by the label's
        own EXIF orientation if it has one, else by ``image_orientation`` (None: read from the image)."""
        path = self.label_path(name)
        if image_orientation is None:
            image_orientation = read_orientation(self.image_path(name))
        try:
            return self.table.read(path, image_orientation)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.LABEL_ROLE.capitalize()} '{path}' does not exist; "
                                    f"expected {self.LABEL_FILE}") from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RuntimeError(f"Cannot read {self.LABEL_ROLE} '{path}' ({e}); expected {self.LABEL_FILE}") from e

    def load_label(self, name: str, image_orientation: Optional[int] = None) -> np.ndarray:
        """Class ids of ``name``'s label, upright like its image (see ``read_raw_label``)."""
        raw = self.read_raw_label(name, image_orientation)
        if not self.table.fits(raw):
            found, expected = self.channel_trap(raw)
            raise ValueError(f"{self.LABEL_ROLE.capitalize()} '{self.label_path(name)}' {found}; expected {expected}")
        return self.table.ids(raw)

    def label(self, index: int) -> np.ndarray:
        """Item ``index``'s mask alone: its label file is decoded, its image's pixels are not (only
        its EXIF orientation is read), for passes that count class pixels."""
        return self.load_label(self.names[index])

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Dict[str, object]:
        return self.load_item(index)

    def load_item(self, index: int, draft_size=None) -> Dict[str, object]:
        """The item at ``index``; with ``draft_size`` a JPEG may come decoded at a reduced scale (see
        ``decode_image``), for the data cache to resize. Sizes are compared at full scale."""
        name = self.names[index]
        decoded = decode_image(self.image_path(name), draft_size)
        mask = self.load_label(name, decoded.orientation)
        (iw, ih), (mh, mw) = decoded.size, mask.shape
        if (ih, iw) != mask.shape:
            raise ValueError(f"Image '{self.image_path(name)}' is {iw}x{ih} but {self.LABEL_ROLE} "
                             f"'{self.label_path(name)}' is {mw}x{mh}; expected equal sizes"
                             f"{exif_size_note(decoded.orientation)}")
        return {"image": decoded.rgb, "mask": mask, "name": name}

    def cache_identity(self, index: int) -> tuple:
        """What ``load_item(index)`` depends on, for the data cache's key: both files' path, mtime
        and size, and the label table."""
        name = self.names[index]
        return (type(self).__qualname__, name, file_identity(self.image_path(name)),
                file_identity(self.label_path(name)), self.table.key)

    # ------------------------------------------------------------------ checking
    def find_problems(self, workers: int = WORKERS) -> List[Problem]:
        """Every problem of this split, found by decoding each image and label as training does."""
        return self._list_problems + scan(self.names, self._sample_problems, workers)

    def _sample_problems(self, name: str) -> List[Problem]:
        why = f"sample '{name}' is in split '{self.split}'"
        decoded, problems = probe_file(self.image_path(name), decode_image, name, "image", "an image file", why)
        image, orientation = (None, 1) if decoded is None else (decoded.rgb, decoded.orientation)
        raw, more = probe_file(self.label_path(name), lambda p: self.read_raw_label(name, orientation), name,
                               self.LABEL_ROLE, self.LABEL_FILE, why)
        problems += more
        if raw is None:
            return problems
        path = self.label_path(name)
        if not self.table.fits(raw):
            return problems + [Problem(path, *self.channel_trap(raw), name, self.LABEL_ROLE, "mask_channels")]
        unknown = self.table.unknown(raw)
        if unknown:
            found, expected, kind = self.unknown_values(path, raw, unknown)
            problems.append(Problem(path, found, expected, name, self.LABEL_ROLE, kind))
        if image is not None and image.shape[:2] != raw.shape[:2]:
            (ih, iw), (mh, mw) = image.shape[:2], raw.shape[:2]
            problems.append(Problem(path, f"is {mw}x{mh} pixels",
                                    f"{iw}x{ih}, the size of its image{exif_size_note(orientation)}",
                                    name, self.LABEL_ROLE, "mask_size"))
        return problems

    def channel_trap(self, raw: np.ndarray) -> Tuple[str, str]:
        """(found, expected) for a label with the wrong number of channels, naming the likely cause."""
        channels = raw.shape[2] if raw.ndim == 3 else 1
        if raw.ndim == 3:  # single-channel ids expected (a colour table reads any file as RGB)
            if channels >= 3 and (raw[..., 0] == raw[..., 1]).all() and (raw[..., 1] == raw[..., 2]).all():
                return (f"has {channels} equal channels: a greyscale {self.LABEL_ROLE} saved as RGB",
                        f"{self.LABEL_FILE}: save it with one channel (PIL mode 'L')")
            if channels in (3, 4):
                return (f"has {channels} channels: it looks like a colour (RGB) mask, not class ids",
                        f"{self.LABEL_FILE}; {self.COLOUR_HINT}")
        return f"has shape {raw.shape}", self.LABEL_FILE

    def unknown_values(self, path: str, raw: np.ndarray, unknown: list) -> Tuple[str, str, str]:
        """(found, expected, kind) for label values the table does not define."""
        return (f"has values {{{shown(unknown)}}} that are not {type(self).__name__} label ids",
                f"only {self.LABEL_IDS}", "label_values")

    def find_notes(self) -> List[str]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root='{self.root}', split='{self.split}', {len(self)} images)"


class SplitFolders(LabelledPairs):
    """A dataset whose splits are folders: every image of a split's image folder, paired with the
    label file of the same name in its label folder (CamVid, ADE20K, Cityscapes).

    Args: ``root`` the dataset folder or one holding it (``NESTED``); ``split`` "train", "val" or
    "test" (``split_folders`` says what each reads); ``ignore_index`` the value of unlabelled
    pixels; ``val_fraction``, ``seed`` unused: the official val split is the validation split
    (DATA.VAL_FRACTION > 0 only switches validation on); ``download`` fetches a missing dataset
    where a download exists; ``strict``, ``exclude`` as for the folder dataset.
    """

    NESTED: Tuple[str, ...] = ()      # sub-folders of DATA.ROOT that may hold the layout
    REQUIRED: Tuple[str, ...] = ()    # folders that tell the layout
    IMAGE_SUFFIX = ".png"
    LABEL_SUFFIX = ".png"
    DEPTH = 0                         # folder levels between a split folder and its files
    LABEL_VALUES: Mapping[int, int] = {}  # label file value → class id
    VOID_VALUES: Tuple[int, ...] = ()     # label file values meaning "not labelled"

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1,
                 seed: int = 42, download: bool = False, strict: bool = True, exclude: Iterable[str] = ()):
        super().__init__(root, split, ignore_index)
        self.val_fraction, self.seed = float(val_fraction), seed
        self.root = self.locate(self.root, self.NESTED, self.REQUIRED, download)
        self.use_table(ValueTable(self.LABEL_VALUES, self.VOID_VALUES, ignore_index),
                       f"of {type(self).__name__}'s {len(self.CLASSES)} classes")
        image_dir, label_dir = self.split_folders(split)
        self.image_dir, self.label_dir = os.path.join(self.root, image_dir), os.path.join(self.root, label_dir)
        self.list_path = self.image_dir
        listed: List[str] = []
        if os.path.isdir(self.image_dir):
            listed = stems_under(self.image_dir, self.IMAGE_SUFFIX, self.DEPTH)
        else:
            self.missing_split(self.image_dir, f"the folder of the '{split}' split's images; {self.HOME}", strict)
        self.take(listed, exclude, strict)

    def split_folders(self, split: str) -> Tuple[str, str]:
        """(image folder, label folder) of ``split``, relative to the root."""
        raise NotImplementedError

    def _path(self, folder: str, name: str, suffix: str) -> str:
        return os.path.join(folder, *name.split("/")) + suffix

    def image_path(self, name: str) -> str:
        return self._path(self.image_dir, name, self.IMAGE_SUFFIX)

    def label_path(self, name: str) -> str:
        return self._path(self.label_dir, name, self.LABEL_SUFFIX)

    def find_notes(self) -> List[str]:
        """Label files without an image (nothing reads them)."""
        try:
            labels = stems_under(self.label_dir, self.LABEL_SUFFIX, self.DEPTH)
            images = set(stems_under(self.image_dir, self.IMAGE_SUFFIX, self.DEPTH))
        except OSError:
            return []
        where = os.path.relpath(self.label_dir, self.root)
        return orphans_note(f"{where}/", "label", [f"{n}{self.LABEL_SUFFIX}" for n in labels if n not in images])
