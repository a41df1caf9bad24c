"""PASCAL VOC 2012 segmentation, optionally with the SBD augmented training set (VOC "aug").

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png              palette PNGs: pixel values are class indices
                                                   0..20, 255 marks object outlines (ignored)
    <root>/ImageSets/Segmentation/train.txt        1,464 ids     val.txt   1,449 ids
    <root>/SegmentationClassAug/<id>.png           AUG only: single-channel ids from SBD
    <root>/ImageSets/Segmentation/aug.txt          AUG only: mmseg's list (or trainaug.txt, train_aug.txt)

``<root>`` is VOCdevkit/VOC2012; DATA.ROOT may also be VOCdevkit/ or the folder holding it.
With AUG, training reads train.txt with SegmentationClass/ plus every other id of the aug list
with SegmentationClassAug/ (as mmseg's voc_aug.py lays it out and its configs read it: 10,582
images); val ids are never trained on. The official test labels are withheld by the
evaluation server, so the test split is the val split.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, List

from ..registry import DATASETS
from .paired import LabelledPairs, ValueTable

__all__ = ["PascalVOC", "AUG_LISTS"]

# The aug list names in use, first found wins: mmseg's voc_aug.py writes aug.txt (SBD minus VOC
# train and val) and trainaug.txt (the whole 10,582); train_aug.txt is DeepLab's.
AUG_LISTS = ("aug.txt", "trainaug.txt", "train_aug.txt")
# DeepLab's train_aug.txt lists "/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png" per line.
_PATH_LINE = re.compile(r"/?JPEGImages/([^/\\]+)\.jpg")
SETS = os.path.join("ImageSets", "Segmentation")
SBD_HINT = ("make it from SBD (http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/"
            "benchmark.tgz) with mmsegmentation's tools/dataset_converters/voc_aug.py, or set DATA.DATASET.AUG False")


@DATASETS.register(name="pascal_voc")
class PascalVOC(LabelledPairs):
    """PASCAL VOC 2012 segmentation (1,464 train / 1,449 val; 10,582 with AUG): 20 classes and background.

    Args:
        root: VOCdevkit/VOC2012, VOCdevkit, or the folder holding VOCdevkit/.
        split: "train", "val", or "test" (the val split: VOC's test labels are withheld).
        ignore_index: the mask value of outlines (VOC's 255) and other unlabelled pixels.
        val_fraction, seed: not used: val.txt is the validation split (DATA.VAL_FRACTION > 0
            only switches validation on in the trainer).
        aug: train on the SBD augmented set too (see the module docstring); an error names what
            is missing when its files are not there.
        download: fetch VOC 2012 (about 2 GB) with torchvision into DATA.ROOT/VOCdevkit when missing
            (SBD is not fetched).
        strict, exclude: as for the folder dataset.
    """

    CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
    # VOC's colour map: the bits of the class index spread over R, G and B.
    PALETTE = ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
               (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
               (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128))
    LABEL_IDS = "0-20 (the classes) and 255 (outlines, ignored)"
    COLOUR_HINT = ("VOC's SegmentationClass/*.png are palette PNGs whose pixel values are the class ids: use them as "
                   "downloaded (a tool that re-saved them as RGB broke them) or SegmentationClassAug/")
    HOME = ("expected VOCdevkit/VOC2012 (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/): download "
            "VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and unpack it into "
            "DATA.ROOT, or set DATA.DATASET.DOWNLOAD True")

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1, seed: int = 42,
                 aug: bool = False, download: bool = False, strict: bool = True, exclude: Iterable[str] = ()):
        super().__init__(root, split, ignore_index)
        self.val_fraction, self.seed, self.aug = float(val_fraction), seed, bool(aug)
        self.root = self.locate(self.root, ("VOC2012", os.path.join("VOCdevkit", "VOC2012")),
                                ("JPEGImages", SETS), download)
        self.use_table(ValueTable({i: i for i in range(21)}, (255,), ignore_index), "of VOC's 21 classes")
        self.list_path = os.path.join(self.root, SETS, "train.txt" if split == "train" else "val.txt")
        listed = self.read_list(self.list_path)
        if listed is None:
            self.missing_split(self.list_path, f"VOC's list of split '{split}' (one image id per line); {self.HOME}",
                               strict)
            listed = []
        self.aug_ids: set = set()
        self.aug_overlap = 0  # aug-list ids that are val ids (left out)
        if split == "train" and self.aug:
            self.aug_ids = self._aug_ids(set(listed), strict)
            listed += sorted(self.aug_ids)
        self.take(listed, exclude, strict, self.unsafe_names(listed))

    def _aug_ids(self, train: set, strict: bool) -> set:
        """The aug list's ids that train.txt lacks, minus val.txt's (never trained on)."""
        path = next((p for p in (os.path.join(self.root, SETS, n) for n in AUG_LISTS) if os.path.exists(p)), None)
        labels = os.path.join(self.root, "SegmentationClassAug")
        if path is None or not os.path.isdir(labels):
            what = (f"none of {', '.join(AUG_LISTS)} is in {os.path.join(self.root, SETS)}" if path is None
                    else f"'{labels}' is not a folder")
            if strict:
                raise FileNotFoundError(f"{type(self).__name__}: DATA.DATASET.AUG is True but {what}; expected the "
                                        f"SBD augmented set in mmseg's layout: {SBD_HINT}")
            self.missing_split(path or os.path.join(self.root, SETS, AUG_LISTS[0]),
                               f"the SBD augmented set (SegmentationClassAug/ and an aug list): {SBD_HINT}", False)
            return set()
        names = self.read_list(path) or []
        ids = [m.group(1) if (m := _PATH_LINE.fullmatch(n)) else n for n in names]
        if ids != names:  # DeepLab's path lines: remember each id's line for the name check
            self._listed[path] = {i: self._listed[path][n] for i, n in zip(ids, names)}
        val = set(self.read_list(os.path.join(self.root, SETS, "val.txt")) or [])
        self.aug_overlap = len(set(ids) & val)
        return set(ids) - train - val

    def image_path(self, name: str) -> str:
        return os.path.join(self.root, "JPEGImages", f"{name}.jpg")

    def label_path(self, name: str) -> str:
        folder = "SegmentationClassAug" if name in self.aug_ids else "SegmentationClass"
        return os.path.join(self.root, folder, f"{name}.png")

    def layout_need(self) -> str:
        return ("Every listed id needs JPEGImages/<id>.jpg and SegmentationClass/<id>.png (aug ids: "
                "SegmentationClassAug/<id>.png).")

    def find_notes(self) -> List[str]:
        overlap = self.aug_overlap
        return [f"the aug list names {overlap} val id(s); left out of training"] if overlap else []

    def download(self, root: str) -> str:
        """Fetch VOC 2012 trainval with torchvision, which unpacks it into ``root``/VOCdevkit/VOC2012."""
        from torchvision.datasets import VOCSegmentation

        os.makedirs(root, exist_ok=True)
        VOCSegmentation(root=root, year="2012", image_set="trainval", download=True)
        return os.path.join(root, "VOCdevkit", "VOC2012")
