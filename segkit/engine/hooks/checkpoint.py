"""``last.pth`` after every epoch, ``best.pth`` when the monitored metric improves, the last K
epoch checkpoints if asked, and ``last.pth`` when a signal stops the run mid-epoch."""
import glob
import logging
import math
import os
import re


from ...registry import HOOKS
from ..checkpoint import atomic_copy, atomic_save, make_checkpoint, non_finite_keys, unwrap
from .base import HookBase

logger = logging.getLogger(__name__)


@HOOKS.register(name="checkpoint")
class CheckpointHook(HookBase):
    """Saves atomically (a kill mid-save keeps the previous file) to ``OUTPUT_DIR``:
    ``last.pth`` each epoch; ``best.pth`` when ``monitor`` (an ``epoch_metrics`` key such as
    ``val/dice`` or ``val/loss``) improves in ``mode`` ("max" or "min"), or every epoch when
    the run does not log it; ``epoch_NNNN.pth`` for the last ``keep_last`` epochs (0: none).
    Refuses to save weights that are NaN or infinite, so a good checkpoint is never replaced.
    """

    main_process_only = True

    def __init__(self, monitor: str = "val/dice", mode: str = "max", keep_last: int = 0):
        if mode not in ("max", "min"):
            raise ValueError(f"checkpoint hook: MODE must be 'max' or 'min', got '{mode}'")
        self.monitor, self.mode, self.keep_last = monitor, mode, max(0, int(keep_last))
        self.best = None
        self.best_epoch = None
        self._warned = False

    def _improved(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _save(self, names) -> None:
        t = self.trainer
        model = t.scored_model  # the weights test and infer will use (the EMA when one is kept)
        bad = non_finite_keys(unwrap(model).state_dict())
        if bad:
            raise FloatingPointError(f"weights became non-finite ({bad[:3]}…) at epoch {t.epoch + 1}; "
                                     f"not overwriting {t.last_checkpoint or 'any checkpoint'}")
        first = os.path.join(t.output_dir, names[0])
        atomic_save(make_checkpoint(model, t.cfg, **t.state_dict()), first)
        for name in names[1:]:  # serialise once; best.pth and epoch_N.pth are copies
            atomic_copy(first, os.path.join(t.output_dir, name))
        t.last_checkpoint = first

    def after_train(self) -> None:
        t = self.trainer
        if t.interrupted and not t.failed:
            self._save(["last.pth"])
            logger.warning("saved %s at epoch %d, batch %d of the epoch", t.last_checkpoint,
                           t.epoch + 1 if t.in_epoch else t.epoch + 2, t.step_in_epoch if t.in_epoch else 0)

    def after_epoch(self) -> None:
        t = self.trainer
        value = t.epoch_metrics.get(self.monitor)
        if value is None and not self._warned:
            logger.warning("checkpoint: metric '%s' is not logged; best.pth follows last.pth", self.monitor)
            self._warned = True
        is_best = value is None or self._improved(value)
        if is_best:
            self.best, self.best_epoch = value, t.epoch + 1
        names = ["last.pth"] + (["best.pth"] if is_best else [])
        if self.keep_last:
            names.append(f"epoch_{t.epoch + 1:04d}.pth")
        self._save(names)
        if is_best and value is not None:
            logger.info("epoch %d: new best %s = %.4f -> best.pth", t.epoch + 1, self.monitor, value)
        self._prune()

    def _prune(self) -> None:
        if not self.keep_last:
            return
        pattern = re.compile(r"epoch_(\d+)\.pth$")
        found = sorted((int(m.group(1)), p) for p in glob.glob(os.path.join(self.trainer.output_dir, "epoch_*.pth"))
                       if (m := pattern.search(p)))
        for _, path in found[:-self.keep_last]:
            os.remove(path)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
