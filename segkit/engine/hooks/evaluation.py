"""Validation after each epoch, feeding ``val/*`` metrics to the hooks that come after it."""
import logging

from ...registry import HOOKS
from .base import HookBase

logger = logging.getLogger(__name__)


@HOOKS.register(name="evaluation")
class EvalHook(HookBase):
    """Runs the trainer's evaluator on the validation split every ``period`` epochs and after
    the last one; adds ``val/loss``, ``val/dice``, ``val/iou`` (means over images) and their
    ``_std``, mmseg's ``val/mIoU``, ``val/mDice``, ``val/mAcc``, ``val/aAcc`` over the split, and
    each class's IoU as ``val/IoU/<class name>`` (TensorBoard plots them; checkpoints and early
    stopping can monitor any of them, e.g. MONITOR val/mIoU).
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
        for key in ("mIoU", "mDice", "mAcc", "aAcc"):
            t.epoch_metrics[f"val/{key}"] = result[key]
        for row in result["per_class"]:
            t.epoch_metrics[f"val/IoU/{row['class']}"] = row["IoU"]
        t.val_first_batch = t.evaluator.first_batch
