"""The model and the evaluator as a config describes them: shared by training, testing,
export and serving, so a checkpoint is always loaded and scored the same way."""
from __future__ import annotations

import logging

import torch

from ..data import build_transforms, dataset_meta
from ..models import build_model
from .checkpoint import load_model_weights
from .compat import check_checkpoint_config
from .evaluator import Evaluator
from .precision import amp_dtype
from .slide import SlidingWindow

__all__ = ["build_evaluator", "build_sliding_window", "prepare_model", "load_for_inference"]

logger = logging.getLogger(__name__)


def build_sliding_window(cfg):
    """TEST.MODE slide's window settings with the evaluation transforms minus their square resize as
    the normalisation (under INPUT.GEOMETRY keep_ratio the windows slide over the image rescaled to
    INPUT.SCALE, as mmseg's do); None for TEST.MODE whole."""
    if cfg.TEST.MODE != "slide":
        return None
    transform = build_transforms(cfg, train=False, resize=cfg.INPUT.GEOMETRY == "keep_ratio")
    return SlidingWindow.from_config(cfg, normalize=lambda rgb: transform(image=rgb)["image"].float())


def build_evaluator(cfg, loss_fn) -> Evaluator:
    """The Evaluator TEST.* asks for. Under INPUT.GEOMETRY keep_ratio the network-size score has no
    meaning (every image has its own size), so TEST.RESOLUTION network scores at the original size."""
    resolution = cfg.TEST.RESOLUTION
    if cfg.INPUT.GEOMETRY == "keep_ratio" and resolution == "network":
        resolution = "original"
    return Evaluator(loss_fn, num_classes=cfg.MODEL.NUM_CLASSES, ignore_index=cfg.DATA.IGNORE_INDEX,
                     threshold=cfg.TEST.THRESHOLD, amp_dtype=amp_dtype(cfg),
                     channels_last=cfg.MODEL.CHANNELS_LAST, tta_flip=cfg.TEST.TTA.FLIP,
                     tta_scales=cfg.TEST.TTA.SCALES, resolution=resolution,
                     slide=build_sliding_window(cfg), classes=dataset_meta(cfg).classes)


def load_for_inference(cfg, path: str, device: torch.device, check_config: bool = True):
    """``(model, device, onnx)`` for a checkpoint (.pth) or an exported ``.onnx`` file (fp32 or INT8,
    run by onnxruntime on the CPU). Either is refused when it was made with other model-defining
    settings than ``cfg`` (``compat``; an .onnx carries its config in its metadata)."""
    if str(path).endswith(".onnx"):
        from .onnx_model import OnnxRuntimeModel  # optional dependency: onnxruntime

        model = OnnxRuntimeModel(str(path))
        if check_config:
            check_checkpoint_config(cfg, str(path), ckpt={"config": model.config_text})
        return model, torch.device("cpu"), True
    if check_config:
        check_checkpoint_config(cfg, str(path))
    return prepare_model(cfg, device, weights=str(path)), device, False


def prepare_model(cfg, device: torch.device, weights: str = None) -> torch.nn.Module:
    """Build the model, load ``weights`` (default MODEL.WEIGHTS) if set, and move it to
    ``device`` in the configured memory layout. With full-model ``weights`` the encoder's
    MODEL.BACKBONE.WEIGHTS file is not read: it would be overwritten (and may not exist where
    a checkpoint is evaluated or served)."""
    weights = cfg.MODEL.WEIGHTS if weights is None else weights
    model = build_model(cfg, backbone_weights=not weights)
    if weights:
        load_model_weights(model, weights)
        logger.info("loaded weights from %s", weights)
    model.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
    return model
