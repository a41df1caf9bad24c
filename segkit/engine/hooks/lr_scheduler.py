"""Stepping the LR schedule once per epoch and recording the LR that the epoch used."""
import logging

from ...registry import HOOKS
from ...solver import is_plateau
from .base import HookBase

logger = logging.getLogger(__name__)


@HOOKS.register(name="lr_scheduler")
class LRSchedulerHook(HookBase):
    """Logs ``lr`` and steps ``trainer.scheduler`` after each epoch. A plateau schedule is
    stepped with ``monitor`` (default ``val/loss``; falls back to ``train/loss`` without a
    validation split).
    """

    def __init__(self, monitor: str = "val/loss"):
        self.monitor = monitor

    def after_epoch(self) -> None:
        t = self.trainer
        t.epoch_metrics["lr"] = t.optimizer.param_groups[0]["lr"]
        if t.scheduler is None:
            return
        if is_plateau(t.scheduler):
            key = self.monitor if self.monitor in t.epoch_metrics else "train/loss"
            t.scheduler.step(t.epoch_metrics[key])
        else:
            t.scheduler.step()
