"""Sliding-window inference (mmsegmentation's ``mode='slide'``): score a large image at its own
pixels instead of squeezing it to INPUT.SIZE.

The image (optionally rescaled by TEST.SCALE) is covered by CROP_SIZE windows STRIDE apart, the
last row and column shifted back to end at the border, so every pixel is seen and no window
is padded. Windows go through the model TEST.BATCH_SIZE at a time; each window's logits are
added, weighted, into one running sum for the image, which is divided by the summed weights at
the end. Memory is bounded by the window batch plus three image-sized arrays (the normalised
image, the logit sum and the weight sum), never a full-size tensor per window. With the
Gaussian weight, window centres count more than their borders, so seams do not show.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .precision import autocast_context, main_output

__all__ = ["SlidingWindow", "window_starts", "window_weight", "MODES", "WEIGHTS"]

MODES = ("whole", "slide")
WEIGHTS = ("uniform", "gaussian")
Pair = Tuple[int, int]


def _pair(value: Union[int, Sequence[int]]) -> Pair:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def window_starts(length: int, crop: int, stride: int) -> List[int]:
    """Window offsets along one axis: every ``stride`` pixels, the last one ending at the border."""
    starts = list(range(0, length - crop + 1, stride))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def window_weight(crop: Pair, kind: str) -> torch.Tensor:
    """(h, w) weight of a window's pixels: all ones, or a Gaussian (sigma a quarter of the window,
    as nnU-Net's) floored at 1 % of its peak so corners seen by one window still count."""
    if kind == "uniform":
        return torch.ones(crop)
    axes = []
    for n in crop:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (x / (n / 4)) ** 2))
    weight = axes[0][:, None] * axes[1][None, :]
    return (weight / weight.max()).clamp_min(0.01)


class SlidingWindow:
    """Logits of one image of any size, window by window (see the module docstring).

    ``normalize`` turns an (H, W, 3) uint8 image into the (C, H, W) float tensor the model takes
    (the evaluation transforms without their resize)."""

    def __init__(self, crop: Union[int, Sequence[int]], stride: Union[int, Sequence[int]], scale: float = 1.0,
                 weight: str = "uniform", batch_size: int = 8,
                 normalize: Optional[Callable[[np.ndarray], torch.Tensor]] = None):
        self.crop, self.stride = _pair(crop), _pair(stride)
        if min(self.crop) < 1 or min(self.stride) < 1:
            raise ValueError(f"TEST.CROP_SIZE {list(self.crop)} and TEST.STRIDE {list(self.stride)} must be >= 1")
        if any(s > c for s, c in zip(self.stride, self.crop)):
            raise ValueError(f"TEST.STRIDE {list(self.stride)} is larger than TEST.CROP_SIZE {list(self.crop)}: "
                             f"pixels between windows would never be scored. Give a stride <= the crop size")
        if weight not in WEIGHTS:
            raise ValueError(f"TEST.SLIDE_WEIGHT '{weight}' is not one of {list(WEIGHTS)}")
        self.scale, self.batch_size, self.normalize = float(scale), int(batch_size), normalize
        self.weight = window_weight(self.crop, weight)

    @classmethod
    def from_config(cls, cfg, normalize=None) -> Optional["SlidingWindow"]:
        """The config's sliding window, or None for TEST.MODE whole. CROP_SIZE 0 means INPUT.SIZE
        (INPUT.CROP_SIZE, the training crop, under INPUT.GEOMETRY keep_ratio) and STRIDE 0 two
        thirds of the crop (mmseg's usual 512/341)."""
        if cfg.TEST.MODE != "slide":
            return None
        default = cfg.INPUT.CROP_SIZE if cfg.INPUT.GEOMETRY == "keep_ratio" else cfg.INPUT.SIZE
        crop = _pair(cfg.TEST.CROP_SIZE) if cfg.TEST.CROP_SIZE else _pair(default)
        stride = _pair(cfg.TEST.STRIDE) if cfg.TEST.STRIDE else tuple(max(1, c * 2 // 3) for c in crop)
        return cls(crop, stride, scale=cfg.TEST.SCALE, weight=cfg.TEST.SLIDE_WEIGHT,
                   batch_size=cfg.TEST.BATCH_SIZE, normalize=normalize)

    def check_model(self, model) -> None:
        """Windows must be a multiple of the model's output stride (the model would pad each one).
        A model without ``output_stride`` (an ONNX file) is not checked."""
        output_stride = int(getattr(model, "output_stride", 1) or 1)
        bad = [c for c in self.crop if c % output_stride]
        if bad:
            fix = sorted({max(output_stride, c // output_stride * output_stride) for c in self.crop})
            raise ValueError(f"TEST.CROP_SIZE {list(self.crop)} is not a multiple of the model's output stride "
                             f"{output_stride}: use {' or '.join(map(str, fix))} (or a multiple of {output_stride})")

    def _scaled(self, rgb: np.ndarray) -> np.ndarray:
        if self.scale == 1.0:
            return rgb
        h, w = rgb.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)

    @torch.inference_mode()
    def __call__(self, model, rgb: np.ndarray, device: torch.device, amp_dtype=None,
                 channels_last: bool = False, name: str = "") -> torch.Tensor:
        """(1, K, H, W) float logits at ``rgb``'s own size."""
        if self.normalize is None:
            raise ValueError("SlidingWindow needs a normalize transform to take uint8 images")
        h, w = rgb.shape[:2]
        image = self.normalize(self._scaled(rgb))
        logits = self.logits(model, image, device, amp_dtype, channels_last, name=name)
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits

    def logits(self, model, image: torch.Tensor, device: torch.device, amp_dtype=None,
               channels_last: bool = False, name: str = "") -> torch.Tensor:
        """(1, K, H, W) float logits of a normalised (C, H, W) image at its own size."""
        _, h, w = image.shape
        (ch, cw), (sh, sw) = self.crop, self.stride
        if ch > h or cw > w:
            where = f"image '{name}'" if name else "the image"
            raise ValueError(f"TEST.CROP_SIZE {list(self.crop)} is larger than {where} ({h}x{w} after TEST.SCALE "
                             f"{self.scale:g}): lower TEST.CROP_SIZE, raise TEST.SCALE, or use TEST.MODE whole")
        boxes = [(y, x) for y in window_starts(h, ch, sh) for x in window_starts(w, cw, sw)]
        weight = self.weight.to(device)
        total: Optional[torch.Tensor] = None
        counts = torch.zeros((h, w), device=device)
        for start in range(0, len(boxes), self.batch_size):
            chunk = boxes[start:start + self.batch_size]
            batch = torch.stack([image[:, y:y + ch, x:x + cw] for y, x in chunk]).to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp_dtype):
                out = main_output(model(batch)).float()
            if total is None:
                total = torch.zeros((out.shape[1], h, w), device=device)
            for (y, x), window in zip(chunk, out):
                total[:, y:y + ch, x:x + cw] += window * weight
                counts[y:y + ch, x:x + cw] += weight
        return (total / counts)[None]
