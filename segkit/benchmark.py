"""``segkit benchmark``: how fast segkit trains, infers and loads on this machine, and how that
compares with a plain PyTorch loop doing the same job.

segkit's side is the real code path: the Trainer's ``run_step`` on batches from
``build_dataloader`` (data cache, configured precision and memory format), and inference in
``torch.inference_mode`` through ``forward_batch``. The ``--baseline`` side is what a student
writes first: a Dataset that opens each JPEG with PIL and resizes it per item, the same model
in fp32 and NCHW, BCE + Adam, a DataLoader with the same workers, and an eval loop under
``torch.no_grad``. Both run in one process on the same data and model, interleaved round by
round, so a busy shared machine slows both alike; each side reports its best round, and the
ratios are what to compare across machines.

``--to-dice D`` trains both (from the same initial weights, constant learning rate) until the
test Dice reaches D or ``--max-epochs`` pass, and reports the wall time each needed
(evaluation time excluded, since it only measures progress).

The output ends with one JSON line holding every number.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import resource
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .cli import _OPTS_HELP, user_errors
from .engine.allocator import configure_allocator
from .experiments.plain_loop import plain_dataset

__all__ = ["main"]

logger = logging.getLogger("segkit")


# ---------------------------------------------------------------------------- timing helpers
def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer reads finished work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or this process's peak RSS on CPU
    (ru_maxrss: kilobytes on Linux, bytes on macOS; never decreases within a process)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _batches(loader, set_epoch=None):
    """Batches of ``loader`` forever, one epoch after another."""
    epoch = 0
    while True:
        if set_epoch is not None:
            set_epoch(epoch)
        for batch in loader:
            yield batch
        epoch += 1


# ---------------------------------------------------------------------------- the plain loop
class PlainLoop:
    """The baseline: fp32, NCHW, BCE + Adam, PIL loading in a DataLoader with the same workers.

    ``dtype``/``channels_last`` give the same hand-written loop with autocast and NHWC, the
    two lines a user adds to make a peer library's model fast (``--peer``).
    """

    def __init__(self, cfg, model: torch.nn.Module, device: torch.device, dtype=None, channels_last: bool = False):
        self.cfg, self.device, self.model = cfg, device, model.to(device)
        self.dtype, self.channels_last = dtype, channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.SOLVER.BASE_LR)
        workers = int(cfg.DATA.NUM_WORKERS)
        common = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        # segkit's split read the plain way (PIL decode + resize per item), without augmentation
        self.train_loader = DataLoader(plain_dataset(cfg, "train"), batch_size=cfg.SOLVER.BATCH_SIZE,
                                       shuffle=True, drop_last=True, **common)
        self.test_loader = DataLoader(plain_dataset(cfg, "test"), batch_size=cfg.TEST.BATCH_SIZE, **common)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        from .engine.precision import autocast_context

        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.device, self.dtype):
            return self.model(x).float()

    def step(self, batch) -> None:
        x, y = (t.to(self.device, non_blocking=True) for t in batch)
        loss = F.binary_cross_entropy_with_logits(self._forward(x), (y == 1).float()[:, None])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def train_epoch(self) -> None:
        self.model.train()
        for batch in self.train_loader:
            self.step(batch)

    @torch.no_grad()
    def infer(self, batch) -> torch.Tensor:
        return torch.sigmoid(self._forward(batch[0].to(self.device, non_blocking=True))) > 0.5


def _smp_unet_resnet34(cfg) -> torch.nn.Module:
    """segmentation_models_pytorch's Unet(resnet34), random weights: the model users pick today."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError as e:
        raise ModuleNotFoundError('benchmark --peer smp needs segmentation_models_pytorch: '
                                  'pip install -e ".[bench]"') from e
    return smp.Unet("resnet34", encoder_weights=None, in_channels=cfg.MODEL.IN_CHANNELS,
                    classes=cfg.MODEL.NUM_CLASSES)


PEERS = {"smp": _smp_unet_resnet34}


# ---------------------------------------------------------------------------- segkit's side
class SegkitRun:
    """segkit as configured: a Trainer without hooks (no files written), its loaders and model."""

    def __init__(self, cfg, compile_model: bool = False):
        from .engine import Trainer
        from .engine.precision import amp_dtype, precision_name

        self.trainer = Trainer(cfg)
        self.cfg, self.device, self.model = cfg, self.trainer.device, self.trainer.model
        self.dtype = amp_dtype(cfg, self.device)
        self.precision = precision_name(self.dtype)
        if compile_model:  # the training forward only; inference is timed on the eager model
            attr = "train_model" if hasattr(self.trainer, "train_model") else "model"
            setattr(self.trainer, attr, torch.compile(getattr(self.trainer, attr)))
        self.loader = self.trainer.train_loader
        self._test_loader = None

    @property
    def test_loader(self):
        if self._test_loader is None:
            from .data import build_dataloader

            self._test_loader = build_dataloader(self.cfg, "test")
        return self._test_loader

    def fill_cache(self) -> Optional[float]:
        """Decode every training item into the data cache; img/s of that, None without a cache."""
        dataset = self.loader.dataset
        if dataset.cache is None:
            return None
        start = time.perf_counter()
        for i in range(len(dataset.dataset)):
            dataset.cache.get(dataset.dataset, i)
        return len(dataset.dataset) / max(time.perf_counter() - start, 1e-9)

    def set_epoch(self, epoch: int) -> None:
        self.loader.sampler.set_epoch(epoch)

    def step(self, batch) -> None:
        t = self.trainer
        t.epoch_batches, t.step_in_epoch = 1, 0  # every batch is a step boundary
        t.run_step(batch)

    def infer(self, batch) -> torch.Tensor:
        from .engine.precision import forward_batch

        with torch.inference_mode():
            logits = forward_batch(self.model, batch, self.device, self.dtype,
                                   self.cfg.MODEL.CHANNELS_LAST)[2]
            return logits > 0


# ---------------------------------------------------------------------------- measurements
def _time_steps(step, batches, warmup: int, steps: int, batch_size: int, device) -> float:
    """img/s of ``steps`` calls of ``step`` on fresh batches, after ``warmup`` untimed ones.
    Loading time is included: the loop waits for data as training does."""
    for _ in range(warmup):
        step(next(batches))
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(next(batches))
    _sync(device)
    return steps * batch_size / max(time.perf_counter() - start, 1e-9)


def _latency_ms(model, image: torch.Tensor, dtype, channels_last: bool, device, repeats: int) -> float:
    """Median milliseconds of one forward pass on one image (batch 1), in eval mode."""
    from .engine.precision import autocast_context

    model.eval()
    x = image[None].to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), autocast_context(device, dtype):
        for i in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _loader_img_s(loader, set_epoch, batches: int) -> float:
    """img/s of the loader alone (no model), after one warm-up batch."""
    it = _batches(loader, set_epoch)
    next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += _batch_len(next(it))
    return n / max(time.perf_counter() - start, 1e-9)


def _batch_len(batch) -> int:
    return len(batch["image"]) if isinstance(batch, dict) else len(batch[0])


def _eval_img_s(infer, loader, batches: int, device) -> float:
    """img/s of an eval loop: load, forward, threshold; after one warm-up batch."""
    it = _batches(loader)
    infer(next(it))
    _sync(device)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(it)
        infer(batch)
        n += _batch_len(batch)
    _sync(device)
    return n / max(time.perf_counter() - start, 1e-9)


def _test_dice(run: SegkitRun, model, dtype, channels_last: bool) -> float:
    """Mean per-image test Dice at network size, by segkit's Evaluator (the same for both sides)."""
    from .engine.evaluator import Evaluator

    evaluator = Evaluator(run.trainer.loss_fn, num_classes=1, ignore_index=run.cfg.DATA.IGNORE_INDEX,
                          threshold=run.cfg.TEST.THRESHOLD, amp_dtype=dtype, channels_last=channels_last)
    return float(evaluator.run(model, run.test_loader, run.device)["dice_mean"])


def _to_dice(run: SegkitRun, plain: PlainLoop, target: float, max_epochs: int) -> Dict:
    """Epochs of each side until test Dice >= target; wall time of training (segkit's first
    epoch includes filling its cache, started empty), evaluation excluded."""
    out: Dict = {"target": target, "max_epochs": max_epochs}
    sides = {"segkit": (lambda e: _segkit_epoch(run, e), lambda: _test_dice(run, run.model, run.dtype,
                                                                          run.cfg.MODEL.CHANNELS_LAST)),
             "baseline": (lambda e: plain.train_epoch(), lambda: _test_dice(run, plain.model, None, False))}
    for name, (train_epoch, evaluate) in sides.items():
        elapsed, dice, history, epoch_s = 0.0, float("nan"), [], []
        for epoch in range(max_epochs):
            start = time.perf_counter()
            train_epoch(epoch)
            _sync(run.device)
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
    s, b = out["segkit"]["seconds"], out["baseline"]["seconds"]
    out["baseline_over_segkit"] = (b / s) if s and b else None
    return out


def _segkit_epoch(run: SegkitRun, epoch: int) -> None:
    run.trainer.epoch, run.trainer.step_in_epoch = epoch, 0  # as Trainer.train does between epochs
    run.trainer.train_one_epoch()


def _onnx_model(run: SegkitRun, image: torch.Tensor):
    """segkit's model exported (fp32, any batch and size) and loaded into onnxruntime."""
    from .export import OnnxRuntimeModel, export_onnx

    path = os.path.join(run.cfg.OUTPUT_DIR, "model.onnx")
    export_onnx(copy.deepcopy(run.model), path, image[None], dynamic=True)  # the export converts its input
    return OnnxRuntimeModel(path)


# ---------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segkit benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="experiment YAML file")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help=_OPTS_HELP)
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py", help="import this file first")
    p.add_argument("--baseline", action="store_true", help="also run the plain fp32 PyTorch loop and print ratios")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps before timing (default 3)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per round (default 10)")
    p.add_argument("--rounds", type=int, default=2,
                   help="alternate segkit and baseline this many times; each reports its best (default 2)")
    p.add_argument("--infer-batches", type=int, default=5, help="timed eval-loop batches (default 5)")
    p.add_argument("--latency-repeats", type=int, default=10, help="timed batch-1 forward passes (default 10)")
    p.add_argument("--loader-batches", type=int, default=20, help="batches timed for the loader alone (default 20)")
    p.add_argument("--peer", choices=sorted(PEERS), default=None,
                   help="also time a peer library's model (smp: Unet(resnet34)) in the plain loop, in fp32 and "
                        "with segkit's autocast dtype + channels_last, and print segkit/peer ratios")
    p.add_argument("--compile", action="store_true", help="torch.compile segkit's model (compile time reported)")
    p.add_argument("--onnx", action="store_true",
                   help="also time inference of the model exported to ONNX and run by onnxruntime (fp32)")
    p.add_argument("--to-dice", type=float, default=None, metavar="D",
                   help="time-to-quality instead: train segkit and the plain loop until test Dice >= D")
    p.add_argument("--max-epochs", type=int, default=30, help="with --to-dice: give up after this many epochs")
    p.add_argument("--json-out", metavar="PATH", help="also write the JSON result to PATH")
    return p


def _config(args):
    from .engine import setup

    # Hooks write files and evaluate; the benchmark times the loop alone. The data check is a
    # one-off scan (segkit check-data), not part of the throughput.
    cfg = setup(args.config, args.opts, args.plugin, training=False)
    cfg.defrost()
    cfg.HOOKS, cfg.CUSTOM_HOOKS, cfg.DATA.CHECK = [], [], False
    cfg.OUTPUT_DIR = tempfile.mkdtemp(prefix="segkit-benchmark-")
    cfg.freeze()
    return cfg


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


@user_errors
def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    for name in ("warmup", "steps", "rounds", "infer_batches", "latency_repeats", "loader_batches", "max_epochs"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            raise ValueError(f"--{name.replace('_', '-')} is {getattr(args, name)}; expected a positive number")
    cfg = _config(args)
    if args.to_dice is not None and not 0 < args.to_dice <= 1:
        raise ValueError(f"--to-dice is {args.to_dice}; expected a Dice between 0 and 1")
    run = SegkitRun(cfg, compile_model=args.compile)
    device, bs = run.device, int(cfg.SOLVER.BATCH_SIZE)
    plain = None
    if args.baseline or args.to_dice is not None:
        # The same initial weights on both sides, as a plain (fp32, NCHW) copy.
        plain = PlainLoop(cfg, copy.deepcopy(run.model).to(memory_format=torch.contiguous_format).float(), device)
    peers: Dict[str, PlainLoop] = {}
    if args.peer:
        torch.manual_seed(cfg.SEED)
        peer = PEERS[args.peer](cfg)
        peers = {"fp32": PlainLoop(cfg, peer, device),
                 "fast": PlainLoop(cfg, copy.deepcopy(peer), device, run.dtype, channels_last=True)}
    result: Dict = {"config": args.config, "overrides": list(args.opts), "device": str(device),
                    "torch_threads": torch.get_num_threads(), "precision": run.precision,
                    "channels_last": bool(cfg.MODEL.CHANNELS_LAST), "compile": args.compile,
                    "size": int(cfg.INPUT.SIZE), "batch_size": bs, "num_workers": int(cfg.DATA.NUM_WORKERS),
                    "cache": cfg.DATA.CACHE, "model": dict(getattr(run.model, "arch", {})),
                    "malloc_keep_freed": configure_allocator(cfg)}
    print(f"segkit benchmark: {args.config} on {device} ({torch.get_num_threads()} threads), "
          f"{run.precision}, channels_last={cfg.MODEL.CHANNELS_LAST}, {cfg.INPUT.SIZE} px, batch {bs}, "
          f"{cfg.DATA.NUM_WORKERS} workers, cache {cfg.DATA.CACHE}", flush=True)

    start = time.perf_counter()
    if args.to_dice is not None:  # segkit's first epoch fills its cache, and that time counts
        result["to_dice"] = _to_dice(run, plain, args.to_dice, args.max_epochs)
        td = result["to_dice"]
        print(f"time to test Dice {args.to_dice}: segkit {td['segkit']['seconds']} s "
              f"({td['segkit']['epochs']} epochs), plain loop {td['baseline']['seconds']} s "
              f"({td['baseline']['epochs']} epochs), ratio {td['baseline_over_segkit']}")
        return _finish(result, args)

    result["cache_fill_img_s"] = run.fill_cache()
    seg: Dict[str, List[float]] = {"train": [], "infer": []}
    base: Dict[str, List[float]] = {"train": [], "infer": []}
    seg_batches = _batches(run.loader, run.set_epoch)
    base_batches = _batches(plain.train_loader) if plain else None
    peer_batches = {name: _batches(loop.train_loader) for name, loop in peers.items()}
    peer_train: Dict[str, List[float]] = {}
    _reset_peak(device)
    for r in range(args.rounds):
        run.model.train()
        warm = args.warmup if r == 0 else 1
        if r == 0 and args.compile:
            t0 = time.perf_counter()
            run.step(next(seg_batches))
            result["compile_s"] = time.perf_counter() - t0
        seg["train"].append(_time_steps(run.step, seg_batches, warm, args.steps, bs, device))
        run.model.eval()
        seg["infer"].append(_eval_img_s(run.infer, run.test_loader, args.infer_batches, device))
        if r == 0:
            result["peak_mem_mb"] = _peak_mb(device)
        if plain:
            _reset_peak(device)
            plain.model.train()
            base["train"].append(_time_steps(plain.step, base_batches, warm, args.steps, bs, device))
            plain.model.eval()
            base["infer"].append(_eval_img_s(plain.infer, plain.test_loader, args.infer_batches, device))
            if r == 0:
                result["baseline_peak_mem_mb"] = _peak_mb(device)
            _reset_peak(device)
        for name, loop in peers.items():
            loop.model.train()
            peer_train.setdefault(name, []).append(
                _time_steps(loop.step, peer_batches[name], warm, args.steps, bs, device))
            print(f"  round {r + 1}: {args.peer} ({name}) train {peer_train[name][-1]:.2f} img/s", flush=True)
        print(f"  round {r + 1}: segkit train {seg['train'][-1]:.2f} img/s, eval {seg['infer'][-1]:.2f} img/s"
              + (f" | plain loop train {base['train'][-1]:.2f} img/s, eval {base['infer'][-1]:.2f} img/s"
                 if plain else ""), flush=True)
    image = next(iter(run.test_loader))["image"][0]
    result.update(train_img_s=max(seg["train"]), infer_img_s=max(seg["infer"]),
                  latency_ms=_latency_ms(run.model, image, run.dtype, cfg.MODEL.CHANNELS_LAST, device,
                                         args.latency_repeats),
                  loader_img_s=_loader_img_s(run.loader, run.set_epoch, args.loader_batches))
    result["loader_over_train"] = _ratio(result["loader_img_s"], result["train_img_s"])
    if args.onnx:
        ort = _onnx_model(run, image)
        result["onnx"] = {"infer_img_s": _eval_img_s(lambda batch: ort(batch["image"]) > 0, run.test_loader,
                                                     args.infer_batches, device),
                          "latency_ms": _latency_ms(ort, image, None, False, device, args.latency_repeats)}
    if plain:
        result["baseline"] = {
            "train_img_s": max(base["train"]), "infer_img_s": max(base["infer"]),
            "latency_ms": _latency_ms(plain.model, image, None, False, device, args.latency_repeats),
            "loader_img_s": _loader_img_s(plain.train_loader, None, args.loader_batches)}
        b = result["baseline"]
        result["ratios"] = {"train": _ratio(result["train_img_s"], b["train_img_s"]),
                            "infer": _ratio(result["infer_img_s"], b["infer_img_s"]),
                            "latency": _ratio(b["latency_ms"], result["latency_ms"]),
                            "loader": _ratio(result["loader_img_s"], b["loader_img_s"])}
        if args.onnx:
            result["ratios"]["onnx_infer"] = _ratio(result["onnx"]["infer_img_s"], b["infer_img_s"])
            result["ratios"]["onnx_latency"] = _ratio(b["latency_ms"], result["onnx"]["latency_ms"])
    if peers:
        result["peer"] = {"name": args.peer, "precision_fast": run.precision,
                          **{f"train_img_s_{k}": max(v) for k, v in peer_train.items()}}
        result["peer_ratios"] = {f"train_vs_{k}": _ratio(result["train_img_s"], max(v))
                                 for k, v in peer_train.items()}
    result["wall_s"] = time.perf_counter() - start
    _print_table(result)
    return _finish(result, args)


def _print_table(r: Dict) -> None:
    b = r.get("baseline", {})
    rows = [("train img/s", "train_img_s", "train"), ("eval img/s", "infer_img_s", "infer"),
            ("latency ms (batch 1)", "latency_ms", "latency"), ("loader img/s", "loader_img_s", "loader")]
    print(f"{'':<22}{'segkit':>10}{'plain loop':>12}{'ratio':>8}")
    for label, key, rkey in rows:
        base = f"{b[key]:>12.2f}" if key in b else f"{'-':>12}"
        ratio = f"{r['ratios'][rkey]:>7.2f}x" if b and r["ratios"].get(rkey) else f"{'-':>8}"
        print(f"{label:<22}{r[key]:>10.2f}{base}{ratio}")
    if "onnx" in r:
        print(f"onnxruntime (fp32): eval {r['onnx']['infer_img_s']:.2f} img/s, "
              f"latency {r['onnx']['latency_ms']:.2f} ms at batch 1")
    if "peer" in r:
        p = r["peer"]
        print(f"{p['name']} Unet(resnet34) in the plain loop: fp32 {p['train_img_s_fp32']:.2f} img/s "
              f"(segkit {r['peer_ratios']['train_vs_fp32']:.2f}x), {p['precision_fast']} + channels_last "
              f"{p['train_img_s_fast']:.2f} img/s (segkit {r['peer_ratios']['train_vs_fast']:.2f}x)")
    print(f"loader / train: {r['loader_over_train']:.2f}x; peak memory {r.get('peak_mem_mb', 0):.0f} MB"
          + (f" (cache filled at {r['cache_fill_img_s']:.1f} img/s)" if r.get("cache_fill_img_s") else ""))
    if r.get("malloc_keep_freed") and (b or "peer" in r):
        print("note: MALLOC_KEEP_FREED holds for the whole process, so the plain loop and the peer ran with it "
              "too; run again with MALLOC_KEEP_FREED False to time them as a separate process would")


def _finish(result: Dict, args) -> int:
    if args.json_out:
        from .sweep import write_json_atomic

        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        write_json_atomic(args.json_out, result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
