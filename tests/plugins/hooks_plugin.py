"""Test-only hooks and losses, loaded with --plugin by the resume and failure tests."""
import time

from segkit.engine.hooks import HookBase
from segkit.losses.bce import CrossEntropy
from segkit.registry import HOOKS, LOSSES


@HOOKS.register(name="pause_at")
class PauseAt(HookBase):
    """Sleeps after epoch ``epoch`` (1-based) or after global batch ``step``, after touching
    ``flag`` so a test knows the run is parked there and can kill or signal it."""

    def __init__(self, flag: str, epoch: int = 0, step: int = 0, seconds: float = 60.0):
        self.flag, self.epoch, self.step, self.seconds = flag, int(epoch), int(step), float(seconds)

    def _park(self) -> None:
        with open(self.flag, "w") as f:
            f.write("parked")
        deadline = time.time() + self.seconds
        while time.time() < deadline and not self.trainer.interrupted:
            time.sleep(0.05)

    def after_step(self) -> None:
        if self.step and self.trainer.iter == self.step:
            self._park()

    def after_epoch(self) -> None:
        if self.epoch and self.trainer.epoch + 1 == self.epoch:
            self._park()


@LOSSES.register(name="nan_at_call")
class NaNAtCall(CrossEntropy):
    """BCE that returns NaN on its ``call``-th training call (1-based): a diverging run."""

    def __init__(self, call: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.call, self.calls = int(call), 0

    def forward(self, logits, target):
        self.calls += 1
        loss = super().forward(logits, target)
        return loss * float("nan") if self.calls == self.call else loss
