"""Validation after each epoch, feeding ``val/*`` metrics to the hooks that come after it."""
import logging

from ...registry import HOOKS
from .base import HookBase

logger = logging.getLogger(__name__)


@HOOKS.register(name="evaluation")
class EvalHook(HookBase):
    """Runs the trainer's evaluator on the validation split every ``period`` epochs and after
    the last one; adds ``val/loss``, ``val/dice``, ``val/iou`` (means) and their ``_std``.
    """

    def __init__(self, period: int = 1):
        self.period = max(1, int(period))

    def after_epoch(self) -> None:
        t = self.trainer
        if t.val_loader is None:
            return
        last = t.epoch == t.max_epochs - 1
        if (t.epoch + 1) % self.period and not last:
            return
        result = t.evaluator.run(t.scored_model, t.val_loader, t.device)
        for key in ("loss", "dice", "iou"):
            t.epoch_metrics[f"val/{key}"] = result[f"{key}_mean"]
            t.epoch_metrics[f"val/{key}_std"] = result[f"{key}_std"]
        t.val_first_batch = t.evaluator.first_batch
