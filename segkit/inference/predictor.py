"""Predictor: a trained model as a function from any image to a mask at that image's own size.

The image goes through the evaluation transforms (``build_transforms(cfg, train=False)``), so
the network sees exactly what it saw in tools/test.py; the logits are resized back bilinearly
to the input's size before thresholding, which is how ``--resolution original`` scores.

    predictor = Predictor("quickstart", "work_dirs/quickstart/best.pth")  # a config file or packaged name
    result = predictor("cat.jpg")          # or a PIL image, or an (H, W[, C]) array
    result.mask                            # (H, W) uint8 labels, 1 = pet for binary models
    result.prob                            # (H, W) foreground probability, or (C, H, W)
    result.classes, result.colour          # label names; (H, W, 3) mask in the dataset's colours
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data import build_transforms, dataset_meta, pad_batch
from ..engine.build import build_sliding_window, load_for_inference
from ..engine.precision import amp_dtype, autocast_context, main_output
from ..utils.device import resolve_device
from ..engine.tta import wrap_tta
from ..losses import probabilities
from ..metrics import predict_labels
from ..utils.images import ImageLike, to_rgb
from ..visualize import colour_mask

__all__ = ["Predictor", "Prediction"]



@dataclass
class Prediction:
    """One image's result, every array at the image's own height and width. ``classes[i]`` names
    label ``i`` and ``palette[i]`` is its colour (the dataset's, see ``segkit.data.dataset_meta``)."""

    mask: np.ndarray   # (H, W) uint8 labels
    prob: np.ndarray   # (H, W) foreground probability (binary) or (C, H, W) class probabilities
    classes: Tuple[str, ...] = ()
    palette: Optional[np.ndarray] = None

    @property
    def colour(self) -> np.ndarray:
        """(H, W, 3) uint8: each pixel in its label's colour."""
        return colour_mask(self.mask, self.palette)

    def class_pixels(self) -> Dict[str, int]:
        """Pixels per class name, for the labels present."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.classes))
        return {name: int(counts[i]) for i, name in enumerate(self.classes) if counts[i]}


_PRECISIONS = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16}


def _load_cfg(config):
    from ..config import load_config
    from ..plugins import import_plugins
    from ..utils.process import configure_allocator

    if config is None or isinstance(config, (str, os.PathLike)):
        cfg = load_config(os.fspath(config) if config is not None else None)
    else:
        cfg = config
    import_plugins(cfg.CUSTOM_IMPORTS)
    configure_allocator(cfg)
    return cfg


class Predictor:
    """``Predictor(config, checkpoint)``: config is a YAML path, a packaged config name or a
    CfgNode; checkpoint a .pth written by training, or an exported ``.onnx`` file (run with
    onnxruntime).

    ``device``: "auto" follows the config's DEVICE. ``precision``: "auto" follows SOLVER.AMP as
    evaluation does (by default bf16 autocast on CUDA and on CPUs with native bf16, fp32
    elsewhere); or "fp32", "bf16", "fp16". ``tta_flip`` /
    ``tta_scales`` default to TEST.TTA; ``threshold`` to TEST.THRESHOLD.

    A .pth is refused when the config it was trained with differs from ``config`` on a key that
    changes what the model computes (MODEL.*, INPUT.SIZE/MEAN/STD/TEST_TRANSFORMS; see
    ``segkit.engine.compat``); ``check_config=False`` runs it anyway. An .onnx file (fp32 or
    INT8) written by ``segkit export`` carries its config and is checked the same way.

    TEST.MODE slide scores each image at its own pixels with overlapping windows (see
    ``segkit.engine.slide``) instead of resizing it to INPUT.SIZE.
    """

    def __init__(self, config, checkpoint: str, device: str = "auto", precision: str = "auto",
                 tta_flip: Optional[bool] = None, tta_scales: Optional[Sequence[float]] = None,
                 threshold: Optional[float] = None, batch_size: Optional[int] = None, check_config: bool = True):
        self.cfg = _load_cfg(config)
        cfg = self.cfg
        self.num_classes = int(cfg.MODEL.NUM_CLASSES)
        meta = dataset_meta(cfg)
        self.classes, self.palette = meta.classes, meta.palette
        self.threshold = float(cfg.TEST.THRESHOLD if threshold is None else threshold)
        self.batch_size = int(batch_size or cfg.TEST.BATCH_SIZE)
        self.transform = build_transforms(cfg, train=False)
        self.channels_last = bool(cfg.MODEL.CHANNELS_LAST)
        device = resolve_device(cfg.DEVICE if device == "auto" else device)
        model, self.device, onnx = load_for_inference(cfg, str(checkpoint), device, check_config)
        if onnx:
            self.dtype, self.channels_last = None, False
        else:
            if precision == "auto":  # as evaluation runs: SOLVER.AMP (bf16 where the hardware has it)
                self.dtype = amp_dtype(cfg, self.device)
            elif precision in _PRECISIONS:
                self.dtype = _PRECISIONS[precision]
            else:
                raise ValueError(f"Predictor: precision '{precision}' is not one of "
                                 f"{['auto'] + sorted(_PRECISIONS)}")
        model.eval()
        self.slide = build_sliding_window(cfg)
        if self.slide is not None:
            self.slide.check_model(model)
        flip = cfg.TEST.TTA.FLIP if tta_flip is None else tta_flip
        scales = cfg.TEST.TTA.SCALES if tta_scales is None else tta_scales
        self.model = wrap_tta(model, flip, scales)

    def __call__(self, image: ImageLike) -> Prediction:
        return self.predict(image)

    def predict(self, image: ImageLike) -> Prediction:
        """Mask and probabilities of one image, at its own size."""
        return self.predict_batch([image])[0]

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[ImageLike]) -> List[Prediction]:
        """Predictions for many images of any sizes, run ``batch_size`` at a time."""
        rgbs = [to_rgb(im) for im in images]
        if self.slide is not None:
            return [self._prediction(self.slide(self.model, im, self.device, self.dtype, self.channels_last)[0])
                    for im in rgbs]
        out: List[Prediction] = []
        for start in range(0, len(rgbs), self.batch_size):
            chunk = rgbs[start:start + self.batch_size]
            tensors = [self.transform(image=im)["image"] for im in chunk]
            # keep-ratio images differ in size: padded to one batch, each cropped back below
            x = pad_batch(tensors, 0.0).float().to(self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(self.device, self.dtype):
                logits = main_output(self.model(x))
            logits = logits.float()
            for im, t, lg in zip(chunk, tensors, logits):
                own = lg[None, :, :t.shape[-2], :t.shape[-1]]
                out.append(self._prediction(F.interpolate(own, size=im.shape[:2], mode="bilinear",
                                                          align_corners=False)[0]))
        return out

    def _prediction(self, logits: torch.Tensor) -> Prediction:
        """(K, H, W) logits at the image's size -> its mask and probabilities."""
        mask = predict_labels(logits[None], self.threshold)[0].to(torch.uint8).cpu().numpy()
        prob = probabilities(logits[None])[0].cpu().numpy()
        return Prediction(mask=mask, prob=prob[0] if self.num_classes == 1 else prob, classes=self.classes,
                          palette=self.palette)
