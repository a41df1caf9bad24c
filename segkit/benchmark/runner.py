"""segkit's side of the benchmark: the real code path, driven through public names only.

What is timed must be what ``segkit train`` runs, or the numbers describe something else:
training goes through ``Trainer.train_step`` (one optimizer step on one batch, the configured
precision, memory format and loss) and ``Trainer.train`` (whole epochs, for time-to-Dice) on
batches from the Trainer's own loader (data cache included); inference goes through
``forward_batch`` in ``torch.inference_mode``, as the evaluator and Predictor do. The config
has no hooks (see ``benchmark_config``), so nothing is written, evaluated or scheduled
behind the timer's back and the learning rate stays constant.
"""
from __future__ import annotations

import copy
import os
import time
from typing import Optional

import torch

from ..data import build_dataloader
from ..engine import Evaluator, Trainer
from ..engine.precision import amp_dtype, forward_batch, precision_name

__all__ = ["SegkitRun", "benchmark_config"]


def benchmark_config(cfg, output_dir: str):
    """A copy of ``cfg`` for timing: no hooks (they write files and evaluate; the benchmark times
    the loop alone), no data check (a one-off scan, ``segkit check-data``, not part of the
    throughput) and ``output_dir`` as OUTPUT_DIR (the ONNX export lands there)."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.HOOKS, cfg.CUSTOM_HOOKS, cfg.DATA.CHECK = [], [], False
    cfg.OUTPUT_DIR = output_dir
    cfg.freeze()
    return cfg


class SegkitRun:
    """segkit as configured: a Trainer (built from a ``benchmark_config``), its loaders and model.

    ``compile_model``: ``torch.compile`` the training forward. The Trainer has no config key
    for it (it did not pay on the CPUs measured, see README), so the run swaps the Trainer's
    ``train_model`` (documented as the module the training forward goes through; the bare
    model otherwise, the DDP wrapper under torchrun) for its compiled version. Inference and
    latency are timed on the eager ``model``, which shares the weights.
    """

    def __init__(self, cfg, compile_model: bool = False):
        self.trainer = Trainer(cfg)
        self.cfg, self.device, self.model = cfg, self.trainer.device, self.trainer.model
        self.dtype = amp_dtype(cfg, self.device)
        self.precision = precision_name(self.dtype)
        if compile_model:
            self.trainer.train_model = torch.compile(self.trainer.train_model)
        self.loader = self.trainer.train_loader
        self._test_loader = None

    @property
    def test_loader(self):
        """The test split as segkit's evaluation loads it, built on first use."""
        if self._test_loader is None:
            self._test_loader = build_dataloader(self.cfg, "test")
        return self._test_loader

    def fill_cache(self) -> Optional[float]:
        """Decode every training item into the data cache; img/s of that, None without a cache."""
        dataset = self.loader.dataset  # a segkit.data.TransformedDataset: .cache over the raw .dataset
        if dataset.cache is None:
            return None
        start = time.perf_counter()
        for i in range(len(dataset.dataset)):
            dataset.cache.get(dataset.dataset, i)
        return len(dataset.dataset) / max(time.perf_counter() - start, 1e-9)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle the training loader for ``epoch`` (its sampler keys augmentation by epoch)."""
        self.loader.sampler.set_epoch(epoch)

    def step(self, batch) -> None:
        """One optimizer step on one batch, as in training."""
        self.trainer.train_step(batch)

    def train_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` of ``Trainer.train`` (its sampler epoch, step counters and all), by
        running train() over epochs ``[epoch, epoch + 1)``. Ctrl-C, which the Trainer turns into
        a stop after the current step, stops the benchmark too."""
        trainer = self.trainer
        trainer.start_epoch, trainer.max_epochs = epoch, epoch + 1
        trainer.train()
        if trainer.interrupted:
            raise KeyboardInterrupt

    def infer(self, batch) -> torch.Tensor:
        """Thresholded logits of one test batch, as segkit's evaluation computes them."""
        with torch.inference_mode():
            logits = forward_batch(self.model, batch, self.device, self.dtype, self.cfg.MODEL.CHANNELS_LAST)[2]
            return logits > 0

    def test_dice(self, model: torch.nn.Module, dtype, channels_last: bool) -> float:
        """Mean per-image test Dice of ``model`` at network size by segkit's Evaluator (used for
        both sides, so the two are scored alike)."""
        evaluator = Evaluator(self.trainer.loss_fn, num_classes=1, ignore_index=self.cfg.DATA.IGNORE_INDEX,
                              threshold=self.cfg.TEST.THRESHOLD, amp_dtype=dtype, channels_last=channels_last)
        return float(evaluator.run(model, self.test_loader, self.device)["dice_mean"])

    def onnx_model(self, image: torch.Tensor, int8: bool = False):
        """The model exported to ONNX (fp32, any batch and size) and loaded into onnxruntime; with
        ``int8`` its static INT8 version, calibrated on 16 training images as ``segkit export
        --quantize int8`` does (the timing needs no accuracy check)."""
        from ..export import OnnxRuntimeModel, export_onnx
        from ..export.quantize import calibration_batches, quantize_onnx

        path = os.path.join(self.cfg.OUTPUT_DIR, "model.onnx")
        if not os.path.isfile(path):
            export_onnx(copy.deepcopy(self.model), path, image[None], dynamic=True)  # the export converts its input
        if int8:
            path = quantize_onnx(path, os.path.join(self.cfg.OUTPUT_DIR, "model.int8.onnx"),
                                 calibration_batches(self.cfg, 16))
        return OnnxRuntimeModel(path)
