"""Cityscapes fine annotations: street scenes of 50 cities, 19 classes (the benchmark's train ids).

    <root>/leftImg8bit/{train,val,test}/<city>/<stem>_leftImg8bit.png     2048x1024 frames
    <root>/gtFine/{train,val,test}/<city>/<stem>_gtFine_labelIds.png       the 34 label ids

The label ids become the 19 train ids of cityscapesScripts' labels table; every other id
(void, parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer, …) becomes
``ignore_index``, so no ``*_labelTrainIds.png`` conversion is needed. The test labels are
withheld (the benchmark server scores them), so the test split is the validation split.
Sample names are ``<city>/<stem>``.
"""
from __future__ import annotations

import os
from typing import Tuple

from ..registry import DATASETS
from .paired import SplitFolders

__all__ = ["Cityscapes", "TRAIN_IDS"]

# cityscapesScripts (helpers/labels.py): label id → train id of the 19 evaluated classes.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
             26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
# The other label ids of the table (train id 255 there).
IGNORED_IDS = tuple(i for i in range(34) if i not in TRAIN_IDS)


@DATASETS.register(name="cityscapes")
class Cityscapes(SplitFolders):
    """Cityscapes fine annotations (2,975 train / 500 val frames): the 19 train-id classes, other ids ignored.

    DATA.ROOT holds leftImg8bit/ and gtFine/ (or is the folder holding cityscapes/); test is val
    (the test labels are withheld) and DATA.VAL_FRACTION only switches validation on. There is
    no download without a login: the error for a missing root says where to get it. Keywords:
    see ``SplitFolders``.
    """

    CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
               "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
               "bicycle")
    PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
               (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
               (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
    NESTED = ("cityscapes",)
    REQUIRED = ("leftImg8bit", "gtFine")
    IMAGE_SUFFIX = "_leftImg8bit.png"
    LABEL_SUFFIX = "_gtFine_labelIds.png"
    DEPTH = 1
    LABEL_VALUES = TRAIN_IDS
    VOID_VALUES = IGNORED_IDS
    LABEL_IDS = "Cityscapes label ids 0-33"
    COLOUR_HINT = "the ids are in gtFine/<split>/<city>/*_gtFine_labelIds.png (not *_gtFine_color.png)"
    HOME = ("expected leftImg8bit/ and gtFine/: register at https://www.cityscapes-dataset.com/downloads/, "
            "download leftImg8bit_trainvaltest.zip (11 GB) and gtFine_trainvaltest.zip (241 MB) and unzip both "
            "into DATA.ROOT")

    def split_folders(self, split: str) -> Tuple[str, str]:
        folder = "train" if split == "train" else "val"
        return os.path.join("leftImg8bit", folder), os.path.join("gtFine", folder)
