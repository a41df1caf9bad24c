"""Export a checkpoint, then prove the file computes what the PyTorch model computes.

The exported file is run next to the PyTorch model on a random batch and, when the config's
dataset is readable, on a real image; the largest logit difference must stay within
``tolerance``. With ``dynamic`` the check repeats at a second batch and size that is not a
multiple of the encoder's stride, so the padding path is exercised too.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import torch

from ..data import build_dataloader, input_size
from ..engine import prepare_model
from .exporters import default_output, export_model, load_exported, max_abs_diff

__all__ = ["export_and_check"]

logger = logging.getLogger("segkit")


def _real_images(cfg, size: int) -> Optional[torch.Tensor]:
    """One test-split image as the model sees it, or None when the dataset is not readable."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATA.NUM_WORKERS, cfg.TEST.BATCH_SIZE, cfg.INPUT.SIZE = 0, 1, size
    cfg.INPUT.GEOMETRY = "square"  # a real picture at the checked size, whatever the pipeline
    for split in ("test", "val"):
        try:
            return next(iter(build_dataloader(cfg, split)))["image"]
        except Exception as e:  # no DATA.ROOT, an empty split: the random check still runs
            logger.info("export: no real %s image to check with (%s)", split, e)
    return None


def _second_size(size: int, stride: int) -> int:
    """A size different from ``size`` that needs padding (not a multiple of the stride)."""
    other = size + max(stride, 8) + 3
    return other + 1 if stride > 1 and other % stride == 0 else other


def export_and_check(cfg, checkpoint: str, fmt: str, output: Optional[str] = None, size: Optional[int] = None,
                     dynamic: bool = False, exporter: str = "torchscript", opset: int = 17,
                     tolerance: float = 1e-4) -> Dict:
    """Write ``checkpoint`` as ``fmt`` (onnx or torchscript) and compare it with PyTorch.

    Returns the file, the largest |logit difference| of each check and overall, and ``ok``
    (that difference within ``tolerance``). Under INPUT.GEOMETRY keep_ratio every image has its own
    size, so the export always takes any size (``dynamic``)."""
    dynamic = bool(dynamic) or cfg.INPUT.GEOMETRY == "keep_ratio"
    size = int(size or max(input_size(cfg)))
    if size <= 0:
        raise ValueError(f"--size must be a positive number of pixels, got {size}")
    model = prepare_model(cfg, torch.device("cpu"), weights=checkpoint).float().eval()
    model.to(memory_format=torch.contiguous_format)
    output = output or default_output(checkpoint, fmt)
    gen = torch.Generator().manual_seed(int(cfg.SEED))
    example = torch.randn(1, cfg.MODEL.IN_CHANNELS, size, size, generator=gen)
    export_model(model, fmt, output, example, dynamic=dynamic, exporter=exporter, opset=opset, config=cfg.dump())
    exported = load_exported(output)

    checks = [("random", example)]
    real = _real_images(cfg, size)
    if real is not None:
        checks.append(("real", real))
    if dynamic:
        other = _second_size(size, int(getattr(model, "output_stride", 1) or 1))
        checks.append((f"random batch 2 at {other}", torch.randn(2, cfg.MODEL.IN_CHANNELS, other, other, generator=gen)))
        if real is not None:
            checks.append((f"real at {other}", _real_images(cfg, other)))
    diffs = {name: max_abs_diff(model, exported, images) for name, images in checks}
    worst = max(diffs.values())
    return {"format": fmt, "output": output, "dynamic": dynamic, "size": size, "checks": diffs,
            "shapes": {name: list(images.shape) for name, images in checks},
            "max_abs_diff": worst, "ok": worst <= tolerance, "tolerance": tolerance}
