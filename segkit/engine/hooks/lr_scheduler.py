"""Advancing the LR schedule after optimizer steps and epochs, and logging the LR used."""
from ...registry import HOOKS
from .base import HookBase


@HOOKS.register(name="lr_scheduler")
class LRSchedulerHook(HookBase):
    """Tells ``trainer.schedule`` about every optimizer step and every finished epoch (the
    schedule itself decides, by SOLVER.SCHEDULE_UNIT, which of the two moves it), and records
    the epoch's LR as ``lr``. A plateau schedule reads its monitored metric from the epoch's
    metrics, so this hook must come after the evaluation hook.
    """

    def before_epoch(self) -> None:
        self._lr = self.trainer.optimizer.param_groups[0]["lr"]

    def after_step(self) -> None:
        t = self.trainer
        if t.step_outputs.get("stepped"):
            t.schedule.after_step(t.num_updates)

    def after_epoch(self) -> None:
        t = self.trainer
        t.epoch_metrics["lr"] = self._lr
        t.schedule.after_epoch(t.epoch + 1, t.epoch_metrics)
