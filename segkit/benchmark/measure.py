"""The benchmark's clocks: how one number (img/s, ms, MB, seconds to a Dice) is measured.

Kept apart from what is measured (``runner``, ``plain``, ``peers``) so segkit's side, the plain
loop and a peer are timed by the very same code: each helper takes plain callables (a step, an
inference function, an epoch) and a device, and knows nothing of which side it is timing.
Every timer waits for queued GPU work before it reads the clock (``sync``).
"""
from __future__ import annotations

import resource
import sys
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from ..engine.precision import autocast_context

__all__ = ["sync", "reset_peak", "peak_mb", "batches", "batch_len", "time_steps", "latency_ms",
           "loader_img_s", "eval_img_s", "to_dice"]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer reads finished work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window (GPU only: a process's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or this process's peak RSS on CPU
    (ru_maxrss: kilobytes on Linux, bytes on macOS; never decreases within a process)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def batches(loader, set_epoch: Optional[Callable[[int], None]] = None) -> Iterator:
    """Batches of ``loader`` forever, one epoch after another (``set_epoch(n)`` before each)."""
    epoch = 0
    while True:
        if set_epoch is not None:
            set_epoch(epoch)
        yield from loader
        epoch += 1


def batch_len(batch) -> int:
    """Images in a batch: segkit's dicts and the plain loop's (image, mask) tuples alike."""
    return len(batch["image"]) if isinstance(batch, dict) else len(batch[0])


def time_steps(step: Callable, stream: Iterator, warmup: int, steps: int, batch_size: int, device) -> float:
    """img/s of ``steps`` calls of ``step`` on fresh batches, after ``warmup`` untimed ones.
    Loading time is included: the loop waits for data as training does."""
    for _ in range(warmup):
        step(next(stream))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(next(stream))
    sync(device)
    return steps * batch_size / max(time.perf_counter() - start, 1e-9)


def latency_ms(model, image: torch.Tensor, dtype, channels_last: bool, device, repeats: int) -> float:
    """Median milliseconds of one forward pass on one image (batch 1), in eval mode; ``model``
    is an nn.Module or anything that acts as one (``segkit.export.OnnxRuntimeModel``)."""
    model.eval()
    x = image[None].to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), autocast_context(device, dtype):
        for i in range(repeats + 1):
            sync(device)
            start = time.perf_counter()
            model(x)
            sync(device)
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def loader_img_s(loader, set_epoch: Optional[Callable[[int], None]], n_batches: int) -> float:
    """img/s of the loader alone (no model), after one warm-up batch."""
    it = batches(loader, set_epoch)
    next(it)
    start, n = time.perf_counter(), 0
    for _ in range(n_batches):
        n += batch_len(next(it))
    return n / max(time.perf_counter() - start, 1e-9)


def eval_img_s(infer: Callable, loader, n_batches: int, device) -> float:
    """img/s of an eval loop: load, forward, threshold; after one warm-up batch."""
    it = batches(loader)
    infer(next(it))
    sync(device)
    start, n = time.perf_counter(), 0
    for _ in range(n_batches):
        batch = next(it)
        infer(batch)
        n += batch_len(batch)
    sync(device)
    return n / max(time.perf_counter() - start, 1e-9)


def to_dice(sides: Dict[str, Tuple[Callable[[int], None], Callable[[], float]]], target: float,
            max_epochs: int, device) -> Dict:
    """Epochs of each side until its test Dice >= ``target``, one side after the other.

    ``sides`` maps a name to ``(train_epoch(epoch), evaluate() -> Dice)``. Only training is
    timed (evaluation only measures progress); ``seconds`` is None for a side that never got
    there within ``max_epochs``.
    """
    out: Dict = {"target": target, "max_epochs": max_epochs}
    for name, (train_epoch, evaluate) in sides.items():
        elapsed, dice, history, epoch_s = 0.0, float("nan"), [], []
        for epoch in range(max_epochs):
            start = time.perf_counter()
            train_epoch(epoch)
            sync(device)
            epoch_s.append(time.perf_counter() - start)
            elapsed += epoch_s[-1]
            dice = evaluate()
            history.append(round(dice, 4))
            print(f"  {name:<8} epoch {epoch + 1:>3}: test Dice {dice:.4f}, {elapsed:7.1f} s of training", flush=True)
            if dice >= target:
                break
        reached = dice >= target
        out[name] = {"seconds": elapsed if reached else None, "epochs": len(history), "reached": reached,
                     "final_dice": dice, "dice_per_epoch": history, "seconds_run": elapsed,
                     "epoch_seconds": epoch_s}
    return out
