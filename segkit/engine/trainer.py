"""The training loop: builds an experiment from a config and runs epochs of steps.

The loop itself only moves batches through the model and calls hooks; evaluation,
schedules, checkpoints and logs are hooks (``segkit/engine/hooks``), listed in ``cfg.HOOKS``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections import Counter
from typing import Dict, List, Optional

import torch

from ..config import dump_config
from ..data import build_dataloader, preflight
from ..metrics import dice_per_image, predict_labels
from ..solver import build_optimizer, build_scheduler
from ..utils.files import atomic_write_json
from ..utils.process import configure_allocator
from .checkpoint import load_checkpoint, load_model_weights
from ..utils.distributed import (all_reduce_max, all_reduce_sum, barrier, broadcast_buffers, is_distributed,
                                 is_main_process)
from .distributed import init_distributed, local_device, wrap_model
from .build import build_evaluator, prepare_model
from .class_stats import build_run_loss, class_weight_record
from .hooks import HookBase, build_hooks
from .launch import seed_everything
from ..utils.device import resolve_device
from .precision import amp_dtype, forward_batch, main_output
from .rng import get_rng_state, set_rng_state
from .run_dir import EXISTING_RUN_POLICIES, OutputDirLock, check_new_run, clear_run, on_main_process, probe_lock

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


def _hook_keys(hooks: List[HookBase]) -> List[str]:
    """Stable names for hook states in checkpoints: class name, numbered when repeated."""
    seen: Counter = Counter()
    keys = []
    for h in hooks:
        name = type(h).__name__
        seen[name] += 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


class Trainer:
    """Everything one run needs, built from ``cfg``; ``train()`` runs it.

    Hooks read these attributes: ``cfg, model, optimizer, schedule, loss_fn, evaluator,
    train_loader, val_loader, device, output_dir, epoch, start_epoch, max_epochs, iter``
    (batches so far), ``num_updates`` (optimizer steps so far), ``step_in_epoch``,
    ``step_outputs`` (this batch's numbers) and ``epoch_metrics`` (this epoch's numbers).
    ``eval_model`` is None unless a hook keeps other weights to score and save (the ``ema``
    hook's average); ``scored_model`` is what evaluation and checkpoints use.
    A hook ends training early by setting ``stop_reason``; a SIGINT/SIGTERM sets
    ``interrupted`` and the run stops after the current optimizer step (``in_epoch`` then
    tells whether it stopped part-way through an epoch); ``failed`` marks an exception.

    Under torchrun (DDP) every process builds the same Trainer. ``model`` stays the bare
    model (what evaluation, checkpoints and hooks use: no collective calls hide in it) and
    ``train_model`` is the DistributedDataParallel wrapper the training forward goes through
    (the model itself in one process). Step and epoch numbers are reduced over all
    processes, so every rank sees the same ``step_outputs["loss"]`` and ``epoch_metrics``
    and takes the same decisions (skipping a batch, stopping early, the LR schedule).

    OUTPUT_DIR (see ``run_dir``): building the Trainer writes nothing there; ``train()`` first
    takes the folder's lock (for as long as it runs: a second run into the folder stops with
    an error naming the holder's pid), then writes ``config.yaml``, then calls the hooks.
    ``existing_run`` says what a new run (no ``resume``) does when the folder already holds a
    run: "ignore" writes over it (the default, for callers that manage their own folders),
    "refuse" raises ``OutputDirError`` before anything is built (``segkit train``), "replace"
    deletes the old run's files once the checks have passed (``segkit train --overwrite``).
    Under torchrun only rank 0 touches the folder.
    """

    def __init__(self, cfg, resume: Optional[str] = None, existing_run: str = "ignore"):
        if existing_run not in EXISTING_RUN_POLICIES:
            raise ValueError(f"existing_run must be one of {EXISTING_RUN_POLICIES}, got {existing_run!r}")
        self.cfg = cfg
        self.output_dir = cfg.OUTPUT_DIR
        self.existing_run = existing_run
        self._resumed = bool(resume)
        self._claimed = False  # train() has taken OUTPUT_DIR for this run (later calls continue it)
        self._lock: Optional[OutputDirLock] = None
        configure_allocator(cfg)
        self.device = resolve_device(cfg.DEVICE)
        init_distributed(self.device)  # no-op outside torchrun, or when setup() already joined
        self.device = local_device(self.device)
        if existing_run != "ignore":  # fail before the slow part (model, data check) when the folder is taken
            on_main_process(self._check_output_dir, self.output_dir)
        seed_everything(cfg.SEED, cfg.DETERMINISTIC)  # before anything draws random numbers
        self.model = prepare_model(cfg, self.device)
        self.train_model = wrap_model(self.model, self.device, sync_bn=cfg.MODEL.SYNC_BN)
        self.model_arch = getattr(self.model, "arch", {})
        bad = preflight(cfg)
        self.loss_fn = build_run_loss(cfg, exclude=bad)
        self.train_loader = build_dataloader(cfg, "train", exclude=bad)
        self.val_loader = build_dataloader(cfg, "val", exclude=bad) if cfg.DATA.VAL_FRACTION > 0 else None
        self.evaluator = build_evaluator(cfg, self.loss_fn)
        self.accum_steps = max(1, int(cfg.SOLVER.ACCUM_STEPS))
        self.optimizer = build_optimizer(cfg, self.model)
        self.schedule = build_scheduler(cfg, self.optimizer,
                                        steps_per_epoch=math.ceil(len(self.train_loader) / self.accum_steps))
        self.amp_dtype = amp_dtype(cfg)
        # GradScaler guards fp16 gradients from underflow; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16
                                           and self.device.type == "cuda")
        self.start_epoch, self.max_epochs = 0, cfg.SOLVER.EPOCHS
        self.epoch = self.iter = self.num_updates = self.step_in_epoch = self.epoch_batches = 0
        self.in_epoch = self.failed = False
        self.step_outputs: Dict = {}
        self.epoch_metrics: Dict = {}
        self.val_first_batch = None
        self.eval_model: Optional[torch.nn.Module] = None
        self.stop_reason: Optional[str] = None
        self.interrupted: Optional[str] = None
        self.last_checkpoint: Optional[str] = None
        self.hooks: List[HookBase] = build_hooks(list(cfg.HOOKS) + list(cfg.CUSTOM_HOOKS), self)
        if resume:
            self.resume(resume)

    @property
    def scored_model(self) -> torch.nn.Module:
        return self.eval_model if self.eval_model is not None else self.model

    # ------------------------------------------------------------------ loop
    def call_hooks(self, point: str) -> None:
        main = is_main_process()
        for hook in self.hooks:
            if main or not hook.main_process_only:
                getattr(hook, point)()

    def train(self) -> Dict:
        """Run epochs ``start_epoch..max_epochs-1``; returns the last epoch's metrics.

        Holds OUTPUT_DIR's lock from before the first write (``config.yaml``) to after the
        ``after_train`` hooks."""
        with self._output_dir_claimed():
            self.call_hooks("before_train")
            try:
                with self._stop_on_signals():
                    self._run_epochs()
            except Exception:
                self.failed = True
                logger.exception("training stopped by an exception at epoch %d, step %d", self.epoch + 1, self.iter)
                raise
            finally:
                self.call_hooks("after_train")
        return self.epoch_metrics

    def _run_epochs(self) -> None:
        for self.epoch in range(self.start_epoch, self.max_epochs):
            self.epoch_metrics = {}
            self.call_hooks("before_epoch")
            self.train_one_epoch()
            if self._agree_interrupted():
                break
            broadcast_buffers(self.model)  # every rank evaluates and saves rank 0's model
            self.call_hooks("after_epoch")
            barrier()  # rank 0 has written this epoch's files before anyone goes on
            self.step_in_epoch = 0
            if self._agree_interrupted():
                break
            if self.stop_reason:
                logger.info("stopping after epoch %d: %s", self.epoch + 1, self.stop_reason)
                break

    # ------------------------------------------------------------ OUTPUT_DIR
    def _check_output_dir(self) -> None:
        """Rank 0, before anything is built: is OUTPUT_DIR free for this run? Writes nothing."""
        probe_lock(self.output_dir)
        if self.existing_run == "refuse" and not self._resumed:
            check_new_run(self.output_dir)

    def _claim_output_dir(self) -> None:
        """Rank 0, once the checks have passed: lock OUTPUT_DIR, make sure it is still free for a
        new run (or clear the old run's files, as asked), write ``config.yaml``."""
        lock = OutputDirLock(self.output_dir)
        lock.acquire()
        try:
            if not self._claimed and not self._resumed:
                if self.existing_run == "refuse":
                    check_new_run(self.output_dir)  # again: another run may have finished there meanwhile
                elif self.existing_run == "replace":
                    removed = clear_run(self.output_dir)
                    if removed:
                        logger.warning("--overwrite: deleted the previous run's files in %s: %s", self.output_dir,
                                       ", ".join(removed))
            if not self._claimed:
                dump_config(self.cfg, os.path.join(self.output_dir, "config.yaml"))
                weights = class_weight_record(self.cfg, self.loss_fn)
                if weights is not None:  # what a CLASS_WEIGHT rule came to, beside the config that named it
                    atomic_write_json(os.path.join(self.output_dir, "class_weights.json"), weights)
        except BaseException:
            lock.release()
            raise
        self._lock, self._claimed = lock, True

    @contextlib.contextmanager
    def _output_dir_claimed(self):
        on_main_process(self._claim_output_dir, self.output_dir)
        try:
            yield
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def train_one_epoch(self) -> None:
        """Run the epoch's batches; ``in_epoch`` stays True if a signal stops it part-way."""
        self.in_epoch = True
        self.model.train()
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch, start=self.step_in_epoch * self.train_loader.batch_size)
        self.epoch_batches = self.step_in_epoch + len(self.train_loader)
        start, n_images, loss_sum, dices = time.perf_counter(), 0, 0.0, []
        for batch in self.train_loader:
            self.run_step(batch)
            self.iter += 1
            self.step_in_epoch += 1
            out = self.step_outputs
            if not out["skipped"]:
                n_images += out["batch_size"]
                loss_sum += out["loss"] * out["batch_size"]
                dices.append(out["dice"])
            self.call_hooks("after_step")
            if self._agree_interrupted() and out["stepped"]:
                return
        self.in_epoch = False
        seconds = time.perf_counter() - start
        dice_sum, n_dice = (float(torch.cat(dices).sum()), sum(len(d) for d in dices)) if dices else (0.0, 0)
        # Step losses and batch sizes are global already (run_step); Dice is summed here.
        dice_sum, n_dice = all_reduce_sum(dice_sum, n_dice)
        self.epoch_metrics.update({
            "train/loss": loss_sum / n_images if n_images else float("nan"),
            "train/dice": dice_sum / n_dice if n_dice else float("nan"),
            "train/img_per_s": n_images / max(seconds, 1e-9),
            "time/epoch_s": seconds,
        })

    def run_step(self, batch: Dict) -> None:
        """Forward, loss, backward; an optimizer step every ACCUM_STEPS batches.

        ``step_outputs`` loss, terms and batch_size are over all processes under DDP, so a
        non-finite loss on any rank makes every rank skip (or stop) alike.
        """
        last_in_epoch = self.step_in_epoch + 1 == self.epoch_batches
        boundary = (self.step_in_epoch + 1) % self.accum_steps == 0 or last_in_epoch
        # Between optimizer steps DDP need not average gradients: they only accumulate.
        sync = contextlib.nullcontext() if boundary or not is_distributed() else self.train_model.no_sync()
        with sync:
            images, masks, logits = forward_batch(self.train_model, batch, self.device, self.amp_dtype,
                                                  self.cfg.MODEL.CHANNELS_LAST)
            loss, terms = self.loss_fn(logits, masks)
            loss_value, terms, batch_size = self._global_loss(loss, terms, images.shape[0])
            logits = main_output(logits)
            self.step_outputs = {"loss": loss_value, "terms": terms, "batch_size": batch_size,
                                 "skipped": False, "stepped": False, "grad_norm": None}
            if not math.isfinite(loss_value):
                self._non_finite(loss_value, terms)
                self.step_outputs.update(skipped=True, stepped=boundary)
                if boundary:
                    self.optimizer.zero_grad(set_to_none=True)
                return
            self.scaler.scale(loss / self.accum_steps).backward()
        if boundary:
            self._optimizer_step()
        with torch.no_grad():
            pred = predict_labels(logits.detach(), self.cfg.TEST.THRESHOLD)
            self.step_outputs["dice"] = dice_per_image(pred, masks, self.cfg.MODEL.NUM_CLASSES,
                                                       self.cfg.DATA.IGNORE_INDEX).cpu()

    def train_step(self, batch: Dict) -> Dict:
        """One forward, backward and optimizer step on ``batch`` outside the epoch loop (benchmarks,
        profiling): the batch counts as a whole epoch, so it always ends in an optimizer step.
        Hooks are not called. Returns ``step_outputs``."""
        self.model.train()
        self.epoch_batches, self.step_in_epoch = 1, 0
        self.run_step(batch)
        return self.step_outputs

    def _optimizer_step(self) -> None:
        clip = float(self.cfg.SOLVER.CLIP_GRAD_NORM)
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.step_outputs["grad_norm"] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_updates += 1
        self.step_outputs["stepped"] = True

    def _global_loss(self, loss: torch.Tensor, terms: Dict, batch_size: int):
        """(loss, terms, batch size) over all processes: image-weighted means and the sum."""
        if not is_distributed():
            return float(loss.detach()), terms, batch_size
        names = list(terms)
        sums = all_reduce_sum(batch_size, float(loss.detach()) * batch_size,
                              *(float(terms[k]) * batch_size for k in names))
        n = sums[0]
        return sums[1] / n, {k: v / n for k, v in zip(names, sums[2:])}, int(n)

    def _agree_interrupted(self) -> bool:
        """Whether to stop for a signal; under DDP all ranks agree (any rank's signal counts),
        since a rank that stops alone would leave the others waiting in a collective."""
        if is_distributed():
            codes = {None: 0, "SIGTERM": 1, "SIGINT": 2}
            agreed = int(all_reduce_max(codes.get(self.interrupted, 1))[0])
            self.interrupted = {v: k for k, v in codes.items()}[agreed]
        return bool(self.interrupted)

    def _non_finite(self, loss: float, terms: Dict) -> None:
        where = f"epoch {self.epoch + 1}, step {self.iter + 1}"
        if self.cfg.SOLVER.NONFINITE_LOSS == "skip":
            logger.warning("loss is %s at %s (terms %s); skipping this batch", loss, where, terms)
            return
        last = self.last_checkpoint or "none written yet"
        raise FloatingPointError(
            f"Loss became {loss} at {where} (terms {terms}). Last good checkpoint: {last}. "
            f"Lower SOLVER.BASE_LR, set SOLVER.CLIP_GRAD_NORM, or SOLVER.NONFINITE_LOSS skip.")

    # ------------------------------------------------------------ interrupts
    @contextlib.contextmanager
    def _stop_on_signals(self):
        """First SIGINT/SIGTERM: finish the current optimizer step, checkpoint, stop.
        A second SIGINT stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.interrupted = signal.Signals(signum).name
            logger.warning("%s received: finishing the current step, then stopping (the checkpoint hook, if "
                           "configured, saves last.pth)", self.interrupted)

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> Dict:
        """Everything besides the weights that a resume needs; all plain data or tensors."""
        # Saved between batches, the epoch is unfinished: resume it after the batches done.
        return {"epoch": self.epoch if self.in_epoch else self.epoch + 1,
                "step_in_epoch": self.step_in_epoch if self.in_epoch else 0,
                "iter": self.iter, "num_updates": self.num_updates,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": get_rng_state(),
                "hooks": {k: h.state_dict() for k, h in zip(_hook_keys(self.hooks), self.hooks)}}

    def resume(self, path: str) -> None:
        """Continue the run saved in ``path`` exactly where it stopped."""
        ckpt = load_checkpoint(path)
        missing = [k for k in ("optimizer", "scheduler", "epoch") if k not in ckpt]
        if missing:
            raise ValueError(f"Checkpoint '{path}' has no {missing}: it holds weights only. Use "
                             f"MODEL.WEIGHTS {path} to fine-tune from it instead of --resume")
        load_model_weights(self.model, path, ckpt)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch, self.step_in_epoch = ckpt["epoch"], ckpt.get("step_in_epoch", 0)
        self.epoch, self.iter, self.num_updates = self.start_epoch, ckpt["iter"], ckpt["num_updates"]
        states = ckpt.get("hooks", {})
        for key, hook in zip(_hook_keys(self.hooks), self.hooks):
            if key in states:
                hook.load_state_dict(states[key])
        set_rng_state(ckpt["rng"])
        self.last_checkpoint = path
        self._resumed = True
        logger.info("resumed from %s: epoch %d, step %d of that epoch", path, self.start_epoch + 1,
                    self.step_in_epoch)
