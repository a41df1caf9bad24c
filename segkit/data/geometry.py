"""How an image meets the network: the lab's square resize, or mmseg's keep-ratio pipeline.

``square`` (INPUT.GEOMETRY, the default and what the lab configs use) resizes every image to
INPUT.SIZE x INPUT.SIZE: a street scene of 360x480 is squeezed, thin poles lose half their width.
``keep_ratio`` is the pipeline mmsegmentation users know:

* training: ``RescaleKeepRatio(SCALE)`` (deterministic, so the data cache keeps its result),
  ``RandomScale`` by a factor from RATIO_RANGE (mmseg's ``RandomResize(scale, ratio_range,
  keep_ratio=True)`` in two steps), ``RandomCropCatMax(CROP_SIZE, CAT_MAX_RATIO)`` that pads
  with the ignore index where the image is smaller than the crop, then the augmentation list;
* evaluation: ``RescaleKeepRatio(SCALE)`` only; batches of unequal images are padded by
  :class:`PadCollate` and each image is scored at its original size.

albumentations does the resampling, padding and cropping; segkit only adds what it lacks: the
rescale bounded by a (long, short) edge pair and the crop retried while one class covers more
than CAT_MAX_RATIO of it. Both draw from their own albumentations random streams, so the
per-sample seeding of ``(SEED, epoch, index)`` decides every draw, crops included, and a
resumed run sees the same crops.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.geometric import functional as fgeometric
from albumentations.core.transforms_interface import BaseTransformInitSchema
from torch.utils.data._utils.collate import default_collate

from ..registry import TRANSFORMS

__all__ = ["GEOMETRIES", "RescaleKeepRatio", "RandomCropCatMax", "keep_ratio_scale", "pair", "input_size",
           "PadCollate", "pad_batch", "keep_ratio_steps"]

GEOMETRIES = ("square", "keep_ratio")
# mmseg's RandomCrop draws a crop, then at most this many more while cat_max_ratio refuses them.
CROP_RETRIES = 10


def pair(value) -> Tuple[int, int]:
    """An int or an [h, w] pair as (h, w)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def keep_ratio_scale(height: int, width: int, scale: Sequence[int]) -> float:
    """The factor that fits an image into mmseg's ``scale`` with keep_ratio: its long side within
    max(scale) and its short side within min(scale), one of them met (the order of ``scale``
    does not matter, as in mmseg)."""
    long_edge, short_edge = max(scale), min(scale)
    return min(long_edge / max(height, width), short_edge / min(height, width))


def input_size(cfg) -> Tuple[int, int]:
    """(h, w) of the tensors the network trains on: INPUT.SIZE² or the keep-ratio CROP_SIZE. What a
    graph trace, an export's example input or a benchmark's batch-1 image should use."""
    if cfg.INPUT.GEOMETRY == "keep_ratio":
        return pair(cfg.INPUT.CROP_SIZE)
    return int(cfg.INPUT.SIZE), int(cfg.INPUT.SIZE)


class RescaleKeepRatio(A.DualTransform):
    """Rescale keeping the aspect ratio so the image fits ``scale`` = (long, short) edge bounds
    (mmseg's ``Resize(scale, keep_ratio=True)``); pixel-area averaging when shrinking, bilinear
    when enlarging, nearest neighbour for masks (albumentations' resize does the sampling).

    The target size is computed from the mask when there is one: the data cache may hand in an
    image that libjpeg decoded at a reduced scale (DATA.JPEG_DRAFT) beside its full-size mask,
    and both must land on the size the full-size image would get. An image already at its
    target size is left as it is, so items the data cache scaled pass through untouched.
    """

    class InitSchema(BaseTransformInitSchema):
        scale: Tuple[int, int]
        interpolation: int
        mask_interpolation: int

    def __init__(self, scale: Sequence[int] = (2048, 512), interpolation: int = cv2.INTER_LINEAR,
                 mask_interpolation: int = cv2.INTER_NEAREST, p: float = 1.0):
        super().__init__(p=p)
        self.scale = (int(scale[0]), int(scale[1]))
        self.interpolation, self.mask_interpolation = interpolation, mask_interpolation

    def target_size(self, height: int, width: int) -> Tuple[int, int]:
        """(h, w) an image of this full size is rescaled to."""
        s = keep_ratio_scale(height, width, self.scale)
        return max(1, round(height * s)), max(1, round(width * s))

    def get_params_dependent_on_data(self, params: Dict[str, Any], data: Dict[str, Any]) -> Dict[str, Any]:
        mask = data.get("mask")
        height, width = (mask.shape if mask is not None else params["shape"])[:2]
        return {"target": self.target_size(height, width)}

    @staticmethod
    def _resize(array: np.ndarray, target: Tuple[int, int], interpolation: int, area: bool) -> np.ndarray:
        if tuple(array.shape[:2]) == tuple(target):
            return array
        if area and target[0] * target[1] < array.shape[0] * array.shape[1]:
            interpolation = cv2.INTER_AREA
        return fgeometric.resize(array, target, interpolation=interpolation)

    def apply(self, img: np.ndarray, target: Tuple[int, int] = (0, 0), **params: Any) -> np.ndarray:
        return self._resize(img, target, self.interpolation, area=True)

    def apply_to_mask(self, mask: np.ndarray, target: Tuple[int, int] = (0, 0), **params: Any) -> np.ndarray:
        return self._resize(mask, target, self.mask_interpolation, area=False)

    def get_transform_init_args_names(self) -> Tuple[str, ...]:
        return ("scale", "interpolation", "mask_interpolation")


class RandomCropCatMax(A.RandomCrop):
    """albumentations' RandomCrop (padding images smaller than the crop, the mask with
    ``fill_mask``) plus mmseg's ``cat_max_ratio``: a crop in which one class covers more than
    that share of the labelled pixels (``ignore_index`` left out) is drawn again, up to
    ``CROP_RETRIES`` times, and the last draw is kept. Road and sky then stop filling whole
    crops of a street scene, and rare classes get seen more often."""

    class InitSchema(BaseTransformInitSchema):
        height: int
        width: int
        cat_max_ratio: float
        ignore_index: int
        fill: Union[Tuple[float, ...], float]
        fill_mask: Union[Tuple[float, ...], float]
        pad_position: str

    def __init__(self, height: int, width: int, cat_max_ratio: float = 1.0, ignore_index: int = 255,
                 fill: float = 0.0, fill_mask: float = 255, pad_position: str = "top_left", p: float = 1.0):
        super().__init__(height=height, width=width, pad_if_needed=True, pad_position=pad_position,
                         border_mode=cv2.BORDER_CONSTANT, fill=fill, fill_mask=fill_mask, p=p)
        self.cat_max_ratio, self.ignore_index = float(cat_max_ratio), int(ignore_index)

    def _acceptable(self, mask: Optional[np.ndarray], params: Dict[str, Any]) -> bool:
        if mask is None or self.cat_max_ratio >= 1.0:
            return True
        x1, y1, x2, y2 = params["crop_coords"]
        pad = params.get("pad_params") or {}
        # crop_coords are in the padded frame; the padding holds no labels
        top, left = pad.get("pad_top", 0), pad.get("pad_left", 0)
        window = mask[max(0, y1 - top):max(0, y2 - top), max(0, x1 - left):max(0, x2 - left)]
        counts = np.bincount(window.ravel(), minlength=256).astype(np.int64)
        if self.ignore_index < len(counts):
            counts[self.ignore_index] = 0
        counts = counts[counts > 0]
        return len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio

    def get_params_dependent_on_data(self, params: Dict[str, Any], data: Dict[str, Any]) -> Dict[str, Any]:
        out = super().get_params_dependent_on_data(params, data)
        mask = data.get("mask")
        for _ in range(CROP_RETRIES):
            if self._acceptable(mask, out):
                break
            out = super().get_params_dependent_on_data(params, data)
        return out

    def get_transform_init_args_names(self) -> Tuple[str, ...]:
        return ("height", "width", "cat_max_ratio", "ignore_index", "fill", "fill_mask", "pad_position")


TRANSFORMS.register(RescaleKeepRatio)
TRANSFORMS.register(RandomCropCatMax)


def keep_ratio_steps(cfg, train: bool) -> List[Any]:
    """The keep-ratio geometry before the augmentation list (see the module docstring)."""
    steps: List[Any] = [RescaleKeepRatio(tuple(cfg.INPUT.SCALE))]
    if not train:
        return steps
    low, high = (float(r) for r in cfg.INPUT.RATIO_RANGE)
    if (low, high) != (1.0, 1.0):
        steps.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR,
                                   mask_interpolation=cv2.INTER_NEAREST, area_for_downscale="image", p=1.0))
    crop_h, crop_w = pair(cfg.INPUT.CROP_SIZE)
    # The pad colour is the normalisation mean, so padded pixels become 0 after Normalize, as
    # the padding of an evaluation batch (PadCollate) is.
    fill = tuple(float(round(m * 255)) for m in cfg.INPUT.MEAN)
    steps.append(RandomCropCatMax(crop_h, crop_w, cat_max_ratio=float(cfg.INPUT.CAT_MAX_RATIO),
                                  ignore_index=int(cfg.DATA.IGNORE_INDEX), fill=fill,
                                  fill_mask=int(cfg.DATA.IGNORE_INDEX)))
    return steps


def pad_batch(tensors: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    """Stack (…, H, W) tensors of unequal H, W, padding each at the bottom and right with ``value``."""
    if len({tuple(t.shape) for t in tensors}) == 1:
        return torch.stack(list(tensors))
    h = max(t.shape[-2] for t in tensors)
    w = max(t.shape[-1] for t in tensors)
    out = torch.full((len(tensors), *tensors[0].shape[:-2], h, w), value, dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, ..., :t.shape[-2], :t.shape[-1]] = t
    return out


class PadCollate:
    """Collate items whose images differ in size (keep-ratio evaluation): images padded with 0
    (the normalised mean colour), masks with ``ignore_index`` (left out of every metric), and
    ``size`` (B, 2) holding each image's own (h, w) so its logits can be cropped back."""

    def __init__(self, ignore_index: int = 255):
        self.ignore_index = int(ignore_index)

    def __call__(self, items: List[dict]) -> dict:
        rest = default_collate([{k: v for k, v in it.items() if k not in ("image", "mask")} for it in items])
        rest["image"] = pad_batch([it["image"] for it in items], 0.0)
        rest["mask"] = pad_batch([it["mask"] for it in items], self.ignore_index)
        rest["size"] = torch.tensor([tuple(it["image"].shape[-2:]) for it in items], dtype=torch.long)
        return rest
