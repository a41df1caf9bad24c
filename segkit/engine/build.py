"""The model and the evaluator as a config describes them: shared by training, testing,
export and serving, so a checkpoint is always loaded and scored the same way."""
from __future__ import annotations

import logging

import torch

from ..models import build_model
from .checkpoint import load_model_weights
from .evaluator import Evaluator
from .precision import amp_dtype

__all__ = ["build_evaluator", "prepare_model"]

logger = logging.getLogger(__name__)


def build_evaluator(cfg, loss_fn) -> Evaluator:
    return Evaluator(loss_fn, num_classes=cfg.MODEL.NUM_CLASSES, ignore_index=cfg.DATA.IGNORE_INDEX,
                     threshold=cfg.TEST.THRESHOLD, amp_dtype=amp_dtype(cfg),
                     channels_last=cfg.MODEL.CHANNELS_LAST, tta_flip=cfg.TEST.TTA.FLIP,
                     tta_scales=cfg.TEST.TTA.SCALES, resolution=cfg.TEST.RESOLUTION)


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
