"""INT8 ONNX models by static post-training quantization with onnxruntime's own tooling.

The fp32 export is quantized in QDQ form (QuantizeLinear/DequantizeLinear pairs around each
operator, which onnxruntime fuses into integer kernels: VNNI on x86), weights per output
channel and signed, activations unsigned with ranges calibrated on training images through
the evaluation transforms (the test split never shapes the model). The INT8 file is then
scored next to the fp32 one on a held-out split: Dice of both, the drop, and the share of
pixels whose label agrees. A drop above ``max_dice_drop`` keeps the first and the last
convolution in float (the layers quantization hurts most in an encoder-decoder: the raw
input and the logits) and tries again; if that does not do either, nothing is written.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data import build_dataloader, build_dataset, build_transforms
from ..data.build import TransformedDataset
from ..engine import prepare_model
from ..engine.build import build_evaluator
from ..engine.class_stats import build_run_loss
from ..engine.onnx_model import CONFIG_METADATA_KEY, OnnxRuntimeModel, require
from .exporters import export_model, set_metadata

__all__ = ["quantize_checkpoint", "quantize_onnx", "calibration_batches", "QuantizationError",
           "CALIBRATION_METHODS", "CALIBRATION_SPLITS"]

logger = logging.getLogger("segkit")

# Names on the command line -> onnxruntime's CalibrationMethod members.
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# Calibration reads images the model was fitted on (or held out for validation), never the test split.
CALIBRATION_SPLITS = ("train", "val")


class QuantizationError(ValueError):
    """The model cannot be quantized as asked (no calibration images, a split that may not be used)."""


def calibration_batches(cfg, count: int, split: str = "train") -> List[np.ndarray]:
    """``count`` images of ``split`` (spread evenly over it) as the model sees them in evaluation:
    (1, C, S, S) float32 arrays."""
    if split not in CALIBRATION_SPLITS:
        raise QuantizationError(f"--calib-split '{split}': calibrate on {' or '.join(CALIBRATION_SPLITS)} images; "
                                f"the test split must not shape the model it scores")
    if count < 1:
        raise QuantizationError(f"--calib-images must be at least 1, got {count}")
    dataset = build_dataset(cfg, split)
    if len(dataset) == 0:
        raise QuantizationError(f"no {split} images to calibrate with in DATA.ROOT '{cfg.DATA.ROOT}' "
                                f"(DATASET {cfg.DATA.DATASET.NAME}); point DATA.ROOT at the training data")
    picks = np.unique(np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int))
    items = TransformedDataset(dataset, build_transforms(cfg, train=False), seed=cfg.SEED)
    return [items[int(i)]["image"][None].float().numpy() for i in picks]


def _reader(batches: Sequence[np.ndarray], input_name: str):
    quantization = require("onnxruntime.quantization", "INT8 quantization")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def _conv_nodes(path: str) -> List[str]:
    onnx = require("onnx", "INT8 quantization")
    graph = onnx.load(path, load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]


def quantize_onnx(fp32_path: str, output: str, batches: Sequence[np.ndarray], method: str = "minmax",
                  keep_float: Sequence[str] = (), config: Optional[str] = None) -> str:
    """Write the static INT8 (QDQ) version of ``fp32_path`` to ``output``, calibrated on ``batches``;
    ``keep_float`` names nodes left in float. ``config`` goes into the file's metadata."""
    quantization = require("onnxruntime.quantization", "INT8 quantization")
    if method not in CALIBRATION_METHODS:
        raise QuantizationError(f"--calib-method '{method}' is not one of {sorted(CALIBRATION_METHODS)}")
    if not batches:
        raise QuantizationError("no calibration images")
    with tempfile.TemporaryDirectory(prefix="segkit-int8-") as tmp:
        source = os.path.join(tmp, "pre.onnx")
        try:  # shape inference and graph clean-up, as onnxruntime recommends before quantizing
            quantization.shape_inference.quant_pre_process(fp32_path, source, skip_symbolic_shape=True)
        except Exception as e:  # an exotic graph: quantize the export as it is
            logger.info("int8: pre-processing skipped (%s)", e)
            source = fp32_path
        input_name = OnnxRuntimeModel(fp32_path).input_name
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrators print their progress
            quantization.quantize_static(
                source, output, _reader(batches, input_name), quant_format=quantization.QuantFormat.QDQ,
                per_channel=True, activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8, nodes_to_exclude=list(keep_float),
                calibrate_method=getattr(quantization.CalibrationMethod, CALIBRATION_METHODS[method]),
                extra_options={"CalibTensorRangeSymmetric": False})
    if config is not None:
        onnx = require("onnx", "INT8 quantization")
        proto = onnx.load(output)
        set_metadata(proto, {CONFIG_METADATA_KEY: config})
        onnx.save(proto, output)
    return output


def _score(cfg, model, split: str) -> Dict:
    """Mean Dice of ``model`` on ``split`` (segkit's evaluator, network size) and its predictions."""
    evaluator = build_evaluator(cfg, build_run_loss(cfg))
    evaluator.amp_dtype, evaluator.channels_last, evaluator.slide = None, False, None
    evaluator.resolution = "network"
    preds: Dict[str, np.ndarray] = {}
    summary = evaluator.run(model, build_dataloader(cfg, split), torch.device("cpu"),
                            on_image=lambda record, image, pred, prob, net_image=None:
                            preds.__setitem__(record["name"], pred))
    return {"dice": float(summary["dice_mean"]), "n": int(summary["n"]), "preds": preds}


def _compare(cfg, fp32: Dict, path: str, split: str) -> Dict:
    int8 = _score(cfg, OnnxRuntimeModel(path), split)
    same = sum(int((fp32["preds"][k] == v).sum()) for k, v in int8["preds"].items())
    total = sum(v.size for v in int8["preds"].values())
    return {"int8_dice": int8["dice"], "dice_drop": fp32["dice"] - int8["dice"],
            "mask_agreement": same / max(total, 1)}


def quantize_checkpoint(cfg, checkpoint: str, output: str, calib_images: int = 64, calib_split: str = "train",
                        method: str = "minmax", max_dice_drop: float = 0.01, eval_split: str = "val",
                        keep_float: Sequence[str] = (), opset: int = 17) -> Dict:
    """Export ``checkpoint`` to ONNX, quantize it to INT8 and score both on ``eval_split``.

    ``output`` is written (atomically) only when the Dice drop is at most ``max_dice_drop``;
    ``ok`` says whether it was. The result names the nodes kept in float."""
    if eval_split == "test":
        raise QuantizationError("--eval-split test: the INT8 model is accepted or refused by its score, so "
                                "the test split would shape it; use val (DATA.VAL_FRACTION > 0) or train")
    batches = calibration_batches(cfg, calib_images, calib_split)
    if len(build_dataset(cfg, eval_split)) == 0:
        raise QuantizationError(f"the {eval_split} split is empty (DATA.VAL_FRACTION {cfg.DATA.VAL_FRACTION}): the "
                                f"INT8 model is scored against fp32 on it; set DATA.VAL_FRACTION > 0 or "
                                f"--eval-split train")
    model = prepare_model(cfg, torch.device("cpu"), weights=checkpoint).float().eval()
    model.to(memory_format=torch.contiguous_format)
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".segkit-int8-", dir=folder) as tmp:
        fp32_path = os.path.join(tmp, "fp32.onnx")
        export_model(model, "onnx", fp32_path, torch.from_numpy(batches[0]), dynamic=True, opset=opset,
                     config=cfg.dump())
        fp32 = _score(cfg, OnnxRuntimeModel(fp32_path), eval_split)
        attempts = [list(keep_float)]
        if not keep_float:
            convs = _conv_nodes(fp32_path)
            attempts.append([convs[0], convs[-1]] if len(convs) > 1 else convs)
        for kept in attempts:
            int8_path = os.path.join(tmp, "int8.onnx")
            quantize_onnx(fp32_path, int8_path, batches, method=method, keep_float=kept, config=cfg.dump())
            scores = _compare(cfg, fp32, int8_path, eval_split)
            logger.info("int8 (%s kept in float): Dice %.4f vs fp32 %.4f", kept or "nothing", scores["int8_dice"],
                        fp32["dice"])
            if scores["dice_drop"] <= max_dice_drop:
                os.replace(int8_path, output)
                break
    ok = scores["dice_drop"] <= max_dice_drop
    return {"output": output if ok else None, "ok": ok, "fp32_dice": fp32["dice"], **scores,
            "max_dice_drop": max_dice_drop, "eval_split": eval_split, "eval_images": fp32["n"],
            "calib_images": len(batches), "calib_split": calib_split, "calib_method": method,
            "kept_float": kept, "size_mb": os.path.getsize(output) / 2**20 if ok else None}
