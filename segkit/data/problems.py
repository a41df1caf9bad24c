"""What the data check finds and how it reports it: Problem, DataReport, and the scan of one split.

A run that dies at epoch 7 on a truncated JPEG wastes hours, and a check that stops at the
first bad file hides the next one. ``check_dataset`` fully decodes every image and mask of a
built split and returns a DataReport that lists them all; ``segkit.data.preflight`` runs it
over every split of a config.

A dataset takes part by offering ``find_problems() -> list[Problem]`` and, optionally,
``find_notes() -> list[str]``. Any other dataset is checked by loading every item.
"""
from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

from ..utils.images import describe_orientation

__all__ = ["Problem", "DataReport", "DataError", "WORKERS", "check_dataset", "scan", "item_key", "probe_file",
           "unsafe_name", "name_problem", "NAME_EXPECTED", "exif_size_note"]

# Decoding threads. PIL releases the GIL while it decodes, so threads overlap on I/O and
# decoding without the start-up cost of worker processes.
WORKERS = 4

# Problem.kind → report heading, in the order the report shows the groups.
_HEADINGS = {
    "split": "Split problems",
    "name": "Split-file names that are not bare file names inside DATA.ROOT; nothing opened for them",
    "missing": "Missing files",
    "empty": "Empty files",
    "unreadable": "Unreadable files",
    "channels": "Trimaps with more than one channel",
    "size": "Trimaps whose size differs from their image",
    "values": "Trimaps with values other than 1, 2, 3",
    "mask_channels": "Masks with more than one channel",
    "mask_size": "Masks whose size differs from their image",
    "mask_values": "Masks with values outside DATA.DATASET.MASK_VALUES",
    "mask_colors": "Masks with colours outside DATA.DATASET.MASK_COLORS",
    "label_values": "Labels with values that are not label ids of the dataset",
    "load": "Items that fail to load",
    "label_range": "Masks with labels that are neither a class of MODEL.NUM_CLASSES nor DATA.IGNORE_INDEX",
}


class DataError(ValueError):
    """The dataset has bad files; the message is the full report."""


def item_key(split: str, index: int) -> str:
    """The sample id of item ``index`` in a dataset that has no names of its own."""
    return f"{split}#{index}"


@dataclass(frozen=True)
class Problem:
    """One bad file: where it is, what was found there and what was expected.

    ``name`` is the sample the file spoils; "" marks a problem of a whole split (a missing
    list, an empty split), which leaving samples out cannot fix. ``role`` says what the file
    is to that sample ("image", "trimap"); ``kind`` picks the report group (see _HEADINGS).
    """

    path: str
    found: str
    expected: str
    name: str = ""
    role: str = ""
    kind: str = "other"

    def line(self, root: str = "") -> str:
        """One readable line; the path is shown relative to ``root`` when it lies inside it."""
        path = self.path
        if root and os.path.isabs(path):
            try:
                rel = os.path.relpath(path, root)
                path = path if rel.startswith("..") else rel
            except ValueError:  # another drive on Windows
                pass
        whose = f" ({self.role} of '{self.name}')" if self.name and self.role else (
            f" (sample '{self.name}')" if self.name else "")
        return f"{path}{whose}: {self.found}; expected {self.expected}"

    def __str__(self) -> str:
        return self.line()


@dataclass
class DataReport:
    """What a scan found: ``errors`` (bad files), ``notes`` (harmless oddities) and the
    number of samples scanned per split (``counts``). ``root`` only shortens printed paths."""

    root: str = ""
    errors: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)
    # Label statistics per split, when taken: {split: {"pixels": [...], "images": [...]}}, one
    # entry per name in ``classes``.
    classes: List[str] = field(default_factory=list)
    frequencies: Dict[str, Dict[str, List[int]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_names(self) -> Set[str]:
        """Sample ids with at least one problem: what DATA.SKIP_BAD leaves out."""
        return {p.name for p in self.errors if p.name}

    @property
    def split_problems(self) -> List[Problem]:
        """Problems of whole splits, which no amount of skipping samples can fix."""
        return [p for p in self.errors if not p.name]

    def merge(self, other: "DataReport") -> "DataReport":
        """Add ``other`` into this report, dropping repeats (train and val share one list file)."""
        self.root = self.root or other.root
        seen = {(p.path, p.found, p.name) for p in self.errors}
        for p in other.errors:
            if (p.path, p.found, p.name) not in seen:
                seen.add((p.path, p.found, p.name))
                self.errors.append(p)
        self.notes += [n for n in other.notes if n not in self.notes]
        self.counts.update(other.counts)
        self.classes = self.classes or other.classes
        self.frequencies.update(other.frequencies)
        return self

    def summary(self) -> str:
        total = sum(self.counts.values())
        splits = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        if self.ok:
            return f"no problems in {total} samples ({splits})"
        per_sample = len(self.errors) - len(self.split_problems)
        parts = []
        if per_sample:
            parts.append(f"{_plural(per_sample, 'problem')} in {len(self.bad_names)} of {total} samples ({splits})")
        if self.split_problems:
            parts.append(f"{_plural(len(self.split_problems), 'problem')} with a whole split")
        return "; ".join(parts)

    def format(self) -> str:
        """The human report: a summary line, then every problem grouped by kind, then the notes."""
        lines = [f"Data check of '{self.root}': {self.summary()}"]
        kinds = list(_HEADINGS) + sorted({p.kind for p in self.errors} - set(_HEADINGS))
        for kind in kinds:
            group = [p for p in self.errors if p.kind == kind]
            if group:
                lines.append(f"{_HEADINGS.get(kind, kind.capitalize())} ({len(group)}):")
                lines += [f"  {p.line(self.root)}" for p in group]
        if self.notes:
            lines.append(f"Notes ({len(self.notes)}):")
            lines += [f"  {n}" for n in self.notes]
        lines += self._frequency_table()
        return "\n".join(lines)

    def _frequency_table(self) -> List[str]:
        """Each class's share of the labelled pixels and how many images hold it, per split."""
        if not self.frequencies or not self.classes:
            return []
        splits = list(self.frequencies)
        width = max(8, *(len(c) for c in self.classes))
        lines = ["Class pixel frequencies (share of labelled pixels, images holding the class):",
                 f"  {'class':<{width}}" + "".join(f"  {s:>18}" for s in splits)]
        totals = {s: sum(self.frequencies[s]["pixels"]) or 1 for s in splits}
        for c, name in enumerate(self.classes):
            cells = "".join(f"  {100 * self.frequencies[s]['pixels'][c] / totals[s]:8.3f}% {self.frequencies[s]['images'][c]:>7}"
                            for s in splits)
            lines.append(f"  {name:<{width}}{cells}")
        return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_dataset(dataset, split: str, allow_empty: bool = False, workers: int = WORKERS) -> DataReport:
    """Scan one split of a built dataset (build it with ``strict=False`` so it builds at all).

    Uses the dataset's own ``find_problems()`` when it has one; otherwise loads every item,
    recording each exception against the item's index. An empty split is a problem unless
    ``allow_empty``.
    """
    report = DataReport(root=str(getattr(dataset, "root", "")), counts={split: len(dataset)})
    find = getattr(dataset, "find_problems", None)
    if callable(find):  # a user dataset's find_problems() need not take workers
        report.errors = list(find(workers=workers) if "workers" in inspect.signature(find).parameters else find())
    else:
        report.errors = _load_every_item(dataset, split, workers)
    if callable(getattr(dataset, "find_notes", None)):
        report.notes = list(dataset.find_notes())
    # A listed name set aside unopened (``name_problem``) is a sample too, though the dataset lacks it.
    report.counts[split] += len({p.name for p in report.errors if p.kind == "name"})
    if len(dataset) == 0 and not allow_empty and not report.split_problems:
        where = str(getattr(dataset, "list_path", "") or report.root or type(dataset).__name__)
        hint = (" (val is held out of trainval by DATA.VAL_FRACTION: raise it, or set it to 0 to train "
                "without validation)" if split == "val" else "")
        report.errors.append(Problem(where, f"split '{split}' has no samples",
                                     f"at least one sample{hint}", kind="split"))
    return report


def scan(items: Iterable, find: Callable[[Any], List[Problem]], workers: int = WORKERS) -> List[Problem]:
    """``find(item)`` for every item, in ``workers`` threads (decoding releases the GIL), as one
    list in item order: how every dataset's ``find_problems`` walks its samples."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return [p for found in pool.map(find, items) for p in found]


def _load_every_item(dataset, split: str, workers: int) -> List[Problem]:
    """The generic fallback: ``dataset[i]`` for every i, each failure a Problem."""
    def load(index: int) -> List[Problem]:
        try:
            dataset[index]
        except Exception as e:  # noqa: BLE001  report whatever training would trip over
            return [Problem(f"{type(dataset).__name__}[{index}]", f"raises {type(e).__name__}: {e}",
                            "the item to load", item_key(split, index), "item", "load")]
        return []

    return scan(range(len(dataset)), load, workers)


def probe_file(path: str, read: Callable[[str], np.ndarray], name: str, role: str, expected: str,
           listed: str) -> Tuple[Optional[np.ndarray], List[Problem]]:
    """Decode one file; return its pixels, or None plus the Problem saying why not."""
    if not os.path.exists(path):
        return None, [Problem(path, "does not exist", f"{expected} there, since {listed}", name, role, "missing")]
    if os.path.getsize(path) == 0:
        return None, [Problem(path, "is empty (0 bytes)", expected, name, role, "empty")]
    try:
        return read(path), []
    except Exception as e:  # noqa: BLE001  the check reports whatever training would trip over
        cause = e.__cause__ or e
        return None, [Problem(path, f"cannot be decoded ({cause})", f"{expected}, complete and readable",
                              name, role, "unreadable")]


# What a split-file line must name: a bare file name (stem) looked up in the dataset's own folders.
NAME_EXPECTED = ("a bare name of a file inside DATA.ROOT: no absolute path, no '..', no '/' or '\\' "
                 "(the file it names was not opened)")


def unsafe_name(name: str) -> str:
    """Why a name read from a split file cannot stand for a file inside the dataset root, or "".

    Neither the Oxford layout nor the folder layout has sub-folders in a name, so a name may be
    neither absolute nor hold a path separator or a '..' component: ``images/<name>.jpg`` then always
    lies in ``images/``, and a list file (a text file anyone may hand over) cannot make the check
    or training open ``/home/x/secret.png`` or ``../../elsewhere``.

    The check is on the name, deliberately not on the realpath of the file it names: symlinks
    inside the root were put there by whoever built the root, and following them is intended.
    The root itself may be a symlink, and ``segkit ablate`` builds per-breed roots whose images/
    and trimaps/ are symlinks into the real dataset (experiments.ablation.breed_roots), so a
    realpath-inside-root rule would reject every sample of those while adding nothing against a
    hostile list file, which can only name files in the root's own folders once this rule holds.
    """
    if "\0" in name:
        return "holds a NUL character"
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":" and len(parts) > 1):
        return "is an absolute path"
    if ".." in parts:
        return "has a '..' component"
    if len(parts) > 1:
        return "holds a path separator"
    return ""


def name_problem(list_path: str, line: int, name: str) -> Optional[Problem]:
    """The Problem of an unsafe name (``unsafe_name``) on line ``line`` of ``list_path``, or None.

    It belongs to the sample ``name`` (so DATA.SKIP_BAD can leave it out, as any bad sample),
    and its path is the list file, since no file of the sample may be looked at.
    """
    why = unsafe_name(name)
    if not why:
        return None
    return Problem(list_path, f"line {line} names '{name}', which {why}", NAME_EXPECTED, name, "", "name")


def exif_size_note(orientation: int) -> str:
    """What to add to "label size differs from its image" when the image was turned upright by
    its EXIF orientation (the label was turned too, which is a likely cause); "" otherwise."""
    if orientation == 1:
        return ""
    return (f"; the image has {describe_orientation(orientation)} and is read upright, and its label is turned "
            "the same way unless the label has an EXIF orientation of its own (a label is taken to be drawn on "
            "the image's stored pixels): a label drawn on the upright picture needs the image saved upright, "
            "without the orientation tag")
