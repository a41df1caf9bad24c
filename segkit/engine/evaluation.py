"""Scoring a saved checkpoint on a split: what ``segkit test`` runs."""
from __future__ import annotations

from typing import Dict, Optional

from ..data import build_dataloader, dataset_meta, denormalize
from .class_stats import build_run_loss
from ..visualize import PredictionWriter
from .build import build_evaluator, load_for_inference
from .evaluator import summary_keys
from ..utils.device import resolve_device

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(cfg, checkpoint: str, split: str = "test", out_dir: Optional[str] = None,
                        check_config: bool = True) -> Dict:
    """Loss and every metric over ``split`` for the weights in ``checkpoint`` (a .pth, or an
    exported .onnx file, fp32 or INT8), at the resolution, mode and test-time augmentation
    TEST.RESOLUTION / TEST.MODE / TEST.TTA ask for.

    ``out_dir`` also receives each image's mask, colour mask and overlay, ``per_image.csv`` (worst
    first), ``best_worst.png``, ``per_class.csv`` and ``confusion_matrix.csv``/``.png`` (see
    segkit.visualize); drawn at the original size when that is scored.
    It may not lie inside DATA.ROOT (or hold it), and files there that segkit did not write are
    never replaced (see ``PredictionWriter``): both are refused before the evaluation starts.

    ``check_config``: refuse a checkpoint trained with other model-defining settings (MODEL.*,
    INPUT.SIZE/MEAN/STD, see ``compat.check_checkpoint_config``); False scores it anyway.
    """
    model, device, onnx = load_for_inference(cfg, checkpoint, resolve_device(cfg.DEVICE), check_config)
    meta = dataset_meta(cfg)
    writer = PredictionWriter(out_dir, cfg.MODEL.NUM_CLASSES, data_root=cfg.DATA.ROOT,
                              palette=meta.palette) if out_dir else None
    evaluator = build_evaluator(cfg, build_run_loss(cfg))
    if onnx:  # onnxruntime computes in the file's own precision, on NCHW float32 input
        evaluator.amp_dtype, evaluator.channels_last = None, False

    def draw(record, image, pred, prob, net_image=None):
        if image is None:  # network size: draw on the de-normalised input
            rgb = denormalize(net_image.float().cpu(), cfg.INPUT.MEAN, cfg.INPUT.STD)
            image = (rgb.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        writer.write(record["name"], image, pred)

    result = evaluator.run(model, build_dataloader(cfg, split), device, on_image=draw if writer else None)
    if writer is not None:
        sort_key = "orig_dice" if evaluator.resolution == "both" else "dice"
        columns = ["name", "height", "width"] + [k for p in evaluator.prefixes for k in summary_keys(p)]
        result["out_dir"] = writer.finish(evaluator.records, sort_key=sort_key, columns=columns)
        # the per-class report of the resolution a user reads: the original size when scored
        report_prefix = "orig_" if evaluator.resolution == "both" else ""
        result["out_dir"].update(writer.write_class_report({**result, "split": split}, report_prefix))
    return {**result, "split": split, "checkpoint": checkpoint}
