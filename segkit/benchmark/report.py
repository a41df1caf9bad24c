"""The benchmark's result: one dict of plain numbers (the JSON line) and the table printed from it.

Measuring (``measure``) and running (``run_benchmark``) produce raw numbers; this module
decides what the result holds and how it reads: the settings that make numbers comparable
across machines, the sections each option adds (``baseline``, ``ratios``, ``peer``,
``to_dice``), and the human-readable lines. Ratios are always "how many times better segkit
is" (a higher img/s, or a lower latency), and None where a side has no number.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from ..data import input_size

__all__ = ["ratio", "settings", "print_header", "finish_to_dice", "add_baseline", "add_peer", "print_table"]


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """a / b, or None when either is missing or zero."""
    return a / b if a and b else None


def _size(cfg):
    """INPUT.SIZE, or "HxW" of the keep-ratio training crop."""
    h, w = input_size(cfg)
    return h if cfg.INPUT.GEOMETRY == "square" else f"{h}x{w}"


def settings(run, compile_model: bool, malloc_keep_freed: bool) -> Dict:
    """What was timed and how: the part of the result that says whether two results compare."""
    cfg = run.cfg
    return {"device": str(run.device), "torch_threads": torch.get_num_threads(), "precision": run.precision,
            "channels_last": bool(cfg.MODEL.CHANNELS_LAST), "compile": bool(compile_model),
            "size": _size(cfg), "batch_size": int(cfg.SOLVER.BATCH_SIZE),
            "num_workers": int(cfg.DATA.NUM_WORKERS), "cache": cfg.DATA.CACHE,
            "model": dict(getattr(run.model, "arch", {})), "malloc_keep_freed": malloc_keep_freed}


def print_header(label: str, r: Dict) -> None:
    print(f"segkit benchmark: {label} on {r['device']} ({r['torch_threads']} threads), "
          f"{r['precision']}, channels_last={r['channels_last']}, {r['size']} px, batch {r['batch_size']}, "
          f"{r['num_workers']} workers, cache {r['cache']}", flush=True)


def finish_to_dice(td: Dict) -> Dict:
    """Add the baseline/segkit time ratio to a ``measure.to_dice`` result and print its summary."""
    s, b = td["segkit"]["seconds"], td["baseline"]["seconds"]
    td["baseline_over_segkit"] = ratio(b, s)
    print(f"time to test Dice {td['target']}: segkit {s} s ({td['segkit']['epochs']} epochs), "
          f"plain loop {b} s ({td['baseline']['epochs']} epochs), ratio {td['baseline_over_segkit']}")
    return td


def add_baseline(result: Dict, baseline: Dict) -> None:
    """The plain loop's numbers and segkit's ratios over them (ONNX ones when ONNX was timed)."""
    result["baseline"] = b = baseline
    result["ratios"] = {"train": ratio(result["train_img_s"], b["train_img_s"]),
                        "infer": ratio(result["infer_img_s"], b["infer_img_s"]),
                        "latency": ratio(b["latency_ms"], result["latency_ms"]),
                        "loader": ratio(result["loader_img_s"], b["loader_img_s"])}
    if "onnx" in result:
        result["ratios"]["onnx_infer"] = ratio(result["onnx"]["infer_img_s"], b["infer_img_s"])
        result["ratios"]["onnx_latency"] = ratio(b["latency_ms"], result["onnx"]["latency_ms"])


def add_peer(result: Dict, name: str, precision_fast: str, peer_train: Dict[str, List[float]]) -> None:
    """A peer's best training img/s per variant (fp32, fast) and segkit's ratios over them."""
    result["peer"] = {"name": name, "precision_fast": precision_fast,
                      **{f"train_img_s_{k}": max(v) for k, v in peer_train.items()}}
    result["peer_ratios"] = {f"train_vs_{k}": ratio(result["train_img_s"], max(v)) for k, v in peer_train.items()}


def print_table(r: Dict) -> None:
    """segkit against the plain loop, row by row, then ONNX, the peer, the loader and memory."""
    b = r.get("baseline", {})
    rows = [("train img/s", "train_img_s", "train"), ("eval img/s", "infer_img_s", "infer"),
            ("latency ms (batch 1)", "latency_ms", "latency"), ("loader img/s", "loader_img_s", "loader")]
    print(f"{'':<22}{'segkit':>10}{'plain loop':>12}{'ratio':>8}")
    for label, key, rkey in rows:
        base = f"{b[key]:>12.2f}" if key in b else f"{'-':>12}"
        rat = f"{r['ratios'][rkey]:>7.2f}x" if b and r["ratios"].get(rkey) else f"{'-':>8}"
        print(f"{label:<22}{r[key]:>10.2f}{base}{rat}")
    for key, name in (("onnx", "onnxruntime fp32"), ("int8", "onnxruntime INT8")):
        if key in r:
            o = r[key]
            print(f"{name}: eval {o['infer_img_s']:.2f} img/s ({o['vs_segkit']['infer']:.2f}x segkit), "
                  f"latency {o['latency_ms']:.2f} ms at batch 1 ({o['vs_segkit']['latency']:.2f}x segkit)")
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
