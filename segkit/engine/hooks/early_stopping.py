"""Ending a run whose monitored metric has stopped improving."""
import math

from ...registry import HOOKS
from .base import HookBase


@HOOKS.register(name="early_stopping")
class EarlyStoppingHook(HookBase):
    """After each epoch, compares ``monitor`` with the best value so far; an improvement must
    beat it by more than ``min_delta`` in ``mode`` ("max" or "min"). After ``patience`` epochs
    without one, it asks the trainer to stop. ``patience`` 0 switches the hook off. Its
    counters are saved in checkpoints, so a resumed run keeps counting where it left off.
    """

    def __init__(self, monitor: str = "val/dice", mode: str = "max", patience: int = 0, min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"early_stopping: MODE must be 'max' or 'min', got '{mode}'")
        self.monitor, self.mode = monitor, mode
        self.patience, self.min_delta = int(patience), abs(float(min_delta))
        self.best = None
        self.bad_epochs = 0

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def after_epoch(self) -> None:
        if self.patience <= 0:
            return
        t = self.trainer
        if self.monitor not in t.epoch_metrics:
            raise KeyError(f"early_stopping monitors '{self.monitor}', which this run does not log; "
                           f"logged: {sorted(t.epoch_metrics)}")
        value = float(t.epoch_metrics[self.monitor])
        if not math.isnan(value) and self._improved(value):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            t.stop_reason = (f"early stopping: {self.monitor} has not improved on {self.best:.4g} for "
                             f"{self.bad_epochs} epochs (patience {self.patience})")

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state.get("best"), state.get("bad_epochs", 0)
