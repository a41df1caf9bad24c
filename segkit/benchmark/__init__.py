"""How fast segkit trains, infers and loads on this machine, and how that compares with a plain
PyTorch loop (and a peer library's model) doing the same job.

``run_benchmark(cfg, BenchmarkOptions(...))`` returns every number as one dict; ``segkit
benchmark`` (segkit.commands.benchmark) is the command around it. Both sides run in one
process on the same data and model, interleaved round by round, so a busy shared machine
slows both alike; each side reports its best round, and the ratios are what to compare across
machines. With ``to_dice`` both train from the same initial weights at a constant learning
rate until the test Dice reaches it, and the training time each needed is reported.

    runner   segkit's side (SegkitRun: Trainer.train_step / train, forward_batch)
    plain    the plain PyTorch loop (PlainLoop)
    peers    peer libraries' models, trained in the plain loop (PEERS)
    measure  the timers, shared by all sides
    report   the result dict and the printed table
"""
from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
import time
from typing import Dict, List, Optional

import torch

from ..utils.process import configure_allocator
from . import measure
from .peers import PEERS
from .plain import PlainLoop
from .report import add_baseline, add_peer, finish_to_dice, print_header, print_table, ratio, settings
from .runner import SegkitRun, benchmark_config

__all__ = ["BenchmarkOptions", "run_benchmark", "SegkitRun", "PlainLoop", "PEERS", "benchmark_config",
           "print_table"]


@dataclasses.dataclass
class BenchmarkOptions:
    """How much to time and what to compare with (the command's options, same names).

    Invalid values raise ValueError naming the command-line option (``--steps is 0; …``).
    """

    baseline: bool = False           # also time the plain fp32 loop, and print ratios
    warmup: int = 3                  # untimed training steps before the first timed round
    steps: int = 10                  # timed training steps per round
    rounds: int = 2                  # alternate the sides this many times; each keeps its best
    infer_batches: int = 5           # timed eval-loop batches
    latency_repeats: int = 10        # timed batch-1 forward passes
    loader_batches: int = 20         # batches timed for the loader alone
    peer: Optional[str] = None       # a name of PEERS: its model in the plain loop, fp32 and fast
    compile: bool = False            # torch.compile segkit's training forward
    onnx: bool = False               # also time onnxruntime inference of the exported model
    int8: bool = False               # also time onnxruntime inference of its static INT8 version
    to_dice: Optional[float] = None  # time-to-quality instead: train both until test Dice >= this
    max_epochs: int = 30             # with to_dice: give up after this many epochs

    def __post_init__(self):
        for name in ("warmup", "steps", "rounds", "infer_batches", "latency_repeats", "loader_batches",
                     "max_epochs"):
            if getattr(self, name) < (0 if name == "warmup" else 1):
                raise ValueError(f"--{name.replace('_', '-')} is {getattr(self, name)}; expected a positive number")
        if self.to_dice is not None and not 0 < self.to_dice <= 1:
            raise ValueError(f"--to-dice is {self.to_dice}; expected a Dice between 0 and 1")
        if self.peer is not None and self.peer not in PEERS:
            raise ValueError(f"--peer '{self.peer}' is not a known peer; choose from {sorted(PEERS)}")


def run_benchmark(cfg, options: Optional[BenchmarkOptions] = None, label: str = "") -> Dict:
    """Benchmark ``cfg`` (a loaded config) as ``options`` say; prints progress and the table,
    returns the result. ``label`` names the config in the first printed line. Runs no hooks
    and writes nothing but the data cache (OUTPUT_DIR is a temporary folder, removed after)."""
    options = options or BenchmarkOptions()
    output_dir = tempfile.mkdtemp(prefix="segkit-benchmark-")
    try:
        return _run(benchmark_config(cfg, output_dir), options, label or "config")
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def _run(cfg, o: BenchmarkOptions, label: str) -> Dict:
    run = SegkitRun(cfg, compile_model=o.compile)
    device, bs = run.device, int(cfg.SOLVER.BATCH_SIZE)
    plain = None
    if o.baseline or o.to_dice is not None:
        # The same initial weights on both sides, as a plain (fp32, NCHW) copy.
        plain = PlainLoop(cfg, copy.deepcopy(run.model).to(memory_format=torch.contiguous_format).float(), device)
    peers: Dict[str, PlainLoop] = {}
    if o.peer:
        torch.manual_seed(cfg.SEED)
        peer = PEERS[o.peer](cfg)
        peers = {"fp32": PlainLoop(cfg, peer, device),
                 "fast": PlainLoop(cfg, copy.deepcopy(peer), device, run.dtype, channels_last=True)}
    result = settings(run, o.compile, configure_allocator(cfg))
    print_header(label, result)

    start = time.perf_counter()
    if o.to_dice is not None:  # segkit's first epoch fills its cache, and that time counts
        channels_last = cfg.MODEL.CHANNELS_LAST
        sides = {"segkit": (run.train_epoch, lambda: run.test_dice(run.model, run.dtype, channels_last)),
                 "baseline": (plain.train_epoch, lambda: run.test_dice(plain.model, None, False))}
        result["to_dice"] = finish_to_dice(measure.to_dice(sides, o.to_dice, o.max_epochs, device))
        return result

    result["cache_fill_img_s"] = run.fill_cache()
    seg: Dict[str, List[float]] = {"train": [], "infer": []}
    base: Dict[str, List[float]] = {"train": [], "infer": []}
    seg_batches = measure.batches(run.loader, run.set_epoch)
    base_batches = measure.batches(plain.train_loader) if plain else None
    peer_batches = {name: measure.batches(loop.train_loader) for name, loop in peers.items()}
    peer_train: Dict[str, List[float]] = {}
    measure.reset_peak(device)
    for r in range(o.rounds):
        run.model.train()
        warm = o.warmup if r == 0 else 1
        if r == 0 and o.compile:
            t0 = time.perf_counter()
            run.step(next(seg_batches))
            result["compile_s"] = time.perf_counter() - t0
        seg["train"].append(measure.time_steps(run.step, seg_batches, warm, o.steps, bs, device))
        run.model.eval()
        seg["infer"].append(measure.eval_img_s(run.infer, run.test_loader, o.infer_batches, device))
        if r == 0:
            result["peak_mem_mb"] = measure.peak_mb(device)
        if plain:
            measure.reset_peak(device)
            plain.model.train()
            base["train"].append(measure.time_steps(plain.step, base_batches, warm, o.steps, bs, device))
            plain.model.eval()
            base["infer"].append(measure.eval_img_s(plain.infer, plain.test_loader, o.infer_batches, device))
            if r == 0:
                result["baseline_peak_mem_mb"] = measure.peak_mb(device)
            measure.reset_peak(device)
        for name, loop in peers.items():
            loop.model.train()
            peer_train.setdefault(name, []).append(
                measure.time_steps(loop.step, peer_batches[name], warm, o.steps, bs, device))
            print(f"  round {r + 1}: {o.peer} ({name}) train {peer_train[name][-1]:.2f} img/s", flush=True)
        print(f"  round {r + 1}: segkit train {seg['train'][-1]:.2f} img/s, eval {seg['infer'][-1]:.2f} img/s"
              + (f" | plain loop train {base['train'][-1]:.2f} img/s, eval {base['infer'][-1]:.2f} img/s"
                 if plain else ""), flush=True)
    image = next(iter(run.test_loader))["image"][0]
    channels_last = cfg.MODEL.CHANNELS_LAST
    result.update(train_img_s=max(seg["train"]), infer_img_s=max(seg["infer"]),
                  latency_ms=measure.latency_ms(run.model, image, run.dtype, channels_last, device,
                                                o.latency_repeats),
                  loader_img_s=measure.loader_img_s(run.loader, run.set_epoch, o.loader_batches))
    result["loader_over_train"] = ratio(result["loader_img_s"], result["train_img_s"])
    for key, wanted in (("onnx", o.onnx), ("int8", o.int8)):
        if wanted:  # segkit's own path above, then onnxruntime on the same images
            ort = run.onnx_model(image, int8=key == "int8")
            result[key] = {"infer_img_s": measure.eval_img_s(lambda batch: ort(batch["image"]) > 0, run.test_loader,
                                                             o.infer_batches, device),
                           "latency_ms": measure.latency_ms(ort, image, None, False, device, o.latency_repeats)}
            result[key]["vs_segkit"] = {"infer": ratio(result[key]["infer_img_s"], result["infer_img_s"]),
                                        "latency": ratio(result["latency_ms"], result[key]["latency_ms"])}
    if plain:
        add_baseline(result, {
            "train_img_s": max(base["train"]), "infer_img_s": max(base["infer"]),
            "latency_ms": measure.latency_ms(plain.model, image, None, False, device, o.latency_repeats),
            "loader_img_s": measure.loader_img_s(plain.train_loader, None, o.loader_batches)})
    if peers:
        add_peer(result, o.peer, run.precision, peer_train)
    result["wall_s"] = time.perf_counter() - start
    print_table(result)
    return result
