"""Human- and machine-readable run logs: a text log, a JSON-lines metrics file, a progress bar."""
import datetime
import json
import logging
import math
import os
import time

from tqdm.auto import tqdm

from ...registry import HOOKS
from ...utils.files import atomic_write_text
from .base import HookBase

logger = logging.getLogger("segkit")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@HOOKS.register(name="text_logger")
class TextLoggerHook(HookBase):
    """Mirrors the ``segkit`` logger into ``OUTPUT_DIR/log.txt`` (appending: a resumed run's
    lines follow the earlier ones) and logs one line per epoch with every metric, the epoch's
    time, throughput and the estimated time left.
    """

    main_process_only = True

    def __init__(self, filename: str = "log.txt"):
        self.filename = filename
        self._handler = None

    def before_train(self) -> None:
        t = self.trainer
        self._handler = logging.FileHandler(os.path.join(t.output_dir, self.filename), encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("segkit").addHandler(self._handler)
        logger.info("training %s for epochs %d..%d on %s; output in %s", dict(t.model_arch),
                    t.start_epoch + 1, t.max_epochs, t.device, t.output_dir)
        self._start = time.perf_counter()
        self._start_epoch = t.start_epoch

    def after_epoch(self) -> None:
        t = self.trainer
        done = t.epoch + 1 - self._start_epoch
        per_epoch = (time.perf_counter() - self._start) / max(1, done)
        eta = datetime.timedelta(seconds=round(per_epoch * (t.max_epochs - t.epoch - 1)))
        # per-class values (val/IoU/<class>) go to TensorBoard and metrics.jsonl, not this one line
        metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in t.epoch_metrics.items()
                            if not k.endswith("_std") and k.count("/") < 2)
        logger.info("epoch %d/%d  %s  eta %s", t.epoch + 1, t.max_epochs, metrics, eta)

    def after_train(self) -> None:
        if self._handler is not None:
            logging.getLogger("segkit").removeHandler(self._handler)
            self._handler.close()
            self._handler = None


@HOOKS.register(name="json_logger")
class JSONLoggerHook(HookBase):
    """Appends one JSON object per ``period`` steps and one per epoch to
    ``OUTPUT_DIR/metrics.jsonl``, so results can be read without TensorBoard.

    A new run starts the file; a resumed run appends to it, after dropping only the lines its
    checkpoint does not cover (see ``_records_before_resume``), in one atomic rewrite.
    """

    main_process_only = True

    def __init__(self, filename: str = "metrics.jsonl", period: int = 20):
        self.filename, self.period = filename, max(1, int(period))
        self._file = None
        self._last = None

    def before_train(self) -> None:
        t = self.trainer
        path = os.path.join(t.output_dir, self.filename)
        continuing = bool(t.iter or getattr(t, "last_checkpoint", None))  # resumed, or train() called again
        if not continuing or not os.path.exists(path):
            self._file = open(path, "w", encoding="utf-8")
            return
        with open(path, encoding="utf-8", errors="replace") as f:
            old = f.read()
        kept = "".join(self._records_before_resume(path))
        if kept != old:  # stale or torn lines to drop: replace the file whole, never truncate it in place
            atomic_write_text(path, kept)
        self._file = open(path, "a", encoding="utf-8")

    def _records_before_resume(self, path: str) -> list:
        """Lines a resumed run keeps: those of the epochs and steps its checkpoint covers.

        A run killed after logging but before checkpointing an epoch logged it already; the
        resumed run logs that epoch again, so the stale lines go.
        """
        if not os.path.exists(path):
            return []
        t, kept = self.trainer, []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by the kill
                if (rec.get("type") == "epoch" and rec.get("epoch", 0) <= t.start_epoch) or \
                        (rec.get("type") == "step" and rec.get("step", 0) <= t.iter):
                    kept.append(line if line.endswith("\n") else line + "\n")
        return kept

    def _write(self, record: dict) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()

    def after_step(self) -> None:
        t = self.trainer
        if t.iter % self.period == 0:
            out = t.step_outputs
            now = time.perf_counter()
            ips = self.period * out["batch_size"] / max(now - self._last, 1e-9) if self._last else None
            self._last = now
            self._write({"type": "step", "epoch": t.epoch + 1, "step": t.iter, "loss": out["loss"],
                         **{f"loss/{k}": v for k, v in out["terms"].items()}, "grad_norm": out.get("grad_norm"),
                         "lr": t.optimizer.param_groups[0]["lr"], "img_per_s": ips, "time": time.time()})

    def after_epoch(self) -> None:
        t = self.trainer
        self._write({"type": "epoch", "epoch": t.epoch + 1, "step": t.iter, **t.epoch_metrics,
                     "time": time.time()})

    def after_train(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@HOOKS.register(name="progress_bar")
class ProgressBarHook(HookBase):
    """A tqdm bar per epoch with the running loss and the epoch's ETA; silent when stderr is
    not a terminal (``disable=None``), so CI logs stay readable.
    """

    main_process_only = True

    def __init__(self, disable=None):
        self.disable = disable
        self._bar = None

    def before_epoch(self) -> None:
        t = self.trainer
        self._bar = tqdm(total=len(t.train_loader), desc=f"epoch {t.epoch + 1}/{t.max_epochs}",
                         unit="batch", leave=False, dynamic_ncols=True, disable=self.disable)

    def after_step(self) -> None:
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{self.trainer.step_outputs['loss']:.4f}", refresh=False)

    def after_epoch(self) -> None:
        self.after_train()

    def after_train(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
