"""The training loop: builds an experiment from a config and runs epochs of steps.

The loop itself only moves batches through the model and calls hooks; evaluation,
schedules, checkpoints and logs are hooks (``segkit/engine/hooks``), listed in ``cfg.HOOKS``.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List

import torch

from ..data import build_dataloader
from ..losses import build_loss
from ..metrics import dice_per_image, predict_labels
from ..models import build_model
from ..solver import build_optimizer, build_scheduler
from .checkpoint import load_model_weights
from .evaluator import Evaluator
from .hooks import HookBase, build_hooks
from .precision import amp_dtype, autocast_context, resolve_device

__all__ = ["Trainer", "build_evaluator", "prepare_model", "evaluate_checkpoint"]

logger = logging.getLogger(__name__)


def build_evaluator(cfg, loss_fn) -> Evaluator:
    return Evaluator(loss_fn, num_classes=cfg.MODEL.NUM_CLASSES, ignore_index=cfg.DATA.IGNORE_INDEX,
                     threshold=cfg.TEST.THRESHOLD, amp_dtype=amp_dtype(cfg),
                     channels_last=cfg.MODEL.CHANNELS_LAST)


def prepare_model(cfg, device: torch.device, weights: str = None) -> torch.nn.Module:
    """Build the model, load ``weights`` (default MODEL.WEIGHTS) if set, and move it to
    ``device`` in the configured memory layout."""
    model = build_model(cfg)
    weights = cfg.MODEL.WEIGHTS if weights is None else weights
    if weights:
        load_model_weights(model, weights)
        logger.info("loaded weights from %s", weights)
    model.to(device)
    if cfg.MODEL.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
    return model


class Trainer:
    """Everything one run needs, built from ``cfg``; ``train()`` runs it.

    Hooks read these attributes: ``cfg, model, optimizer, scheduler, loss_fn, evaluator,
    train_loader, val_loader, device, output_dir, epoch, start_epoch, max_epochs, iter,
    step_outputs`` (this step's loss and terms) and ``epoch_metrics`` (this epoch's numbers).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.output_dir = cfg.OUTPUT_DIR
        self.device = resolve_device(cfg.DEVICE)
        self.model = prepare_model(cfg, self.device)
        self.model_arch = getattr(self.model, "arch", {})
        self.loss_fn = build_loss(cfg)
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.train_loader = build_dataloader(cfg, "train")
        self.val_loader = build_dataloader(cfg, "val") if cfg.DATA.VAL_FRACTION > 0 else None
        self.evaluator = build_evaluator(cfg, self.loss_fn)
        self.amp_dtype = amp_dtype(cfg)
        # GradScaler guards fp16 gradients from underflow; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16
                                           and self.device.type == "cuda")
        self.start_epoch, self.max_epochs = 0, cfg.SOLVER.EPOCHS
        self.epoch, self.iter = 0, 0
        self.step_outputs: Dict = {}
        self.epoch_metrics: Dict = {}
        self.val_first_batch = None
        self.hooks: List[HookBase] = build_hooks(list(cfg.HOOKS) + list(cfg.CUSTOM_HOOKS), self)

    def call_hooks(self, point: str) -> None:
        for hook in self.hooks:
            getattr(hook, point)()

    def train(self) -> Dict:
        """Run epochs ``start_epoch..max_epochs-1``; returns the last epoch's metrics."""
        self.call_hooks("before_train")
        try:
            for self.epoch in range(self.start_epoch, self.max_epochs):
                self.epoch_metrics = {}
                self.call_hooks("before_epoch")
                self.train_one_epoch()
                self.call_hooks("after_epoch")
        except Exception:
            logger.exception("training stopped by an exception at epoch %d, step %d", self.epoch + 1, self.iter)
            raise
        finally:
            self.call_hooks("after_train")
        return self.epoch_metrics

    def train_one_epoch(self) -> None:
        self.model.train()
        start, n_images, loss_sum, dices = time.perf_counter(), 0, 0.0, []
        for batch in self.train_loader:
            self.run_step(batch)
            self.call_hooks("after_step")
            self.iter += 1
            n = self.step_outputs["batch_size"]
            n_images += n
            loss_sum += self.step_outputs["loss"] * n
            dices.append(self.step_outputs["dice"])
        seconds = time.perf_counter() - start
        self.epoch_metrics.update({
            "train/loss": loss_sum / max(1, n_images),
            "train/dice": float(torch.cat(dices).mean()) if dices else float("nan"),
            "train/img_per_s": n_images / max(seconds, 1e-9),
            "time/epoch_s": seconds,
        })

    def run_step(self, batch: Dict) -> None:
        images = batch["image"].to(self.device, non_blocking=True)
        masks = batch["mask"].to(self.device, non_blocking=True)
        if self.cfg.MODEL.CHANNELS_LAST:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.device, self.amp_dtype):
            logits = self.model(images)
        loss, terms = self.loss_fn(logits.float(), masks)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Loss became {float(loss)} at epoch {self.epoch + 1}, step {self.iter + 1}; "
                                     f"terms: {terms}. last.pth in {self.output_dir} holds the last good epoch.")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            pred = predict_labels(logits.detach().float(), self.cfg.TEST.THRESHOLD)
            dice = dice_per_image(pred, masks, self.cfg.MODEL.NUM_CLASSES, self.cfg.DATA.IGNORE_INDEX)
        self.step_outputs = {"loss": float(loss.detach()), "terms": terms, "dice": dice.cpu(),
                             "batch_size": images.shape[0]}

    def state_dict(self) -> Dict:
        """Everything but the weights that a checkpoint records about the run's progress."""
        return {"epoch": self.epoch + 1, "iter": self.iter, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(),
                "hooks": {f"{i}:{type(h).__name__}": h.state_dict() for i, h in enumerate(self.hooks)}}


def evaluate_checkpoint(cfg, checkpoint: str, split: str = "test") -> Dict:
    """Mean ± std of loss, Dice and IoU over ``split`` for the weights in ``checkpoint``."""
    device = resolve_device(cfg.DEVICE)
    model = prepare_model(cfg, device, weights=checkpoint)
    evaluator = build_evaluator(cfg, build_loss(cfg))
    result = evaluator.run(model, build_dataloader(cfg, split), device)
    return {**result, "split": split, "checkpoint": checkpoint}
