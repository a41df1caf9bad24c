"""``last.pth`` after every epoch and ``best.pth`` whenever the monitored metric improves."""
import logging
import math
import os

from ...registry import HOOKS
from ..checkpoint import atomic_save, make_checkpoint
from .base import HookBase

logger = logging.getLogger(__name__)


@HOOKS.register(name="checkpoint")
class CheckpointHook(HookBase):
    """Saves atomically to ``OUTPUT_DIR/last.pth`` each epoch, and to ``best.pth`` when
    ``monitor`` (an ``epoch_metrics`` key such as ``val/dice``) improves in ``mode``
    ("max" or "min"). Without that metric (no validation split) every epoch counts as best.
    """

    def __init__(self, monitor: str = "val/dice", mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"checkpoint hook: MODE must be 'max' or 'min', got '{mode}'")
        self.monitor, self.mode = monitor, mode
        self.best = None
        self.best_epoch = None
        self._warned = False

    def _improved(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def after_epoch(self) -> None:
        t = self.trainer
        value = t.epoch_metrics.get(self.monitor)
        if value is None and not self._warned:
            logger.warning("checkpoint: metric '%s' is not logged; best.pth follows last.pth", self.monitor)
            self._warned = True
        is_best = value is None or self._improved(value)
        if is_best:
            self.best, self.best_epoch = value, t.epoch
        ckpt = make_checkpoint(t.model, t.cfg, **t.state_dict())
        atomic_save(ckpt, os.path.join(t.output_dir, "last.pth"))
        if is_best:
            atomic_save(ckpt, os.path.join(t.output_dir, "best.pth"))
            if value is not None:
                logger.info("epoch %d: new best %s = %.4f -> best.pth", t.epoch + 1, self.monitor, value)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
