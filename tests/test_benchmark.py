"""tools/benchmark.py end to end on the tiny synthetic set: throughput with the baseline, and
time-to-quality, each ending in one JSON line."""
import importlib.util
import json
import os
import platform
import subprocess
import sys

import pytest

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs" / "unet_aug_cosine.yaml")
FAST = ["--warmup", "1", "--steps", "1", "--rounds", "1", "--infer-batches", "1", "--latency-repeats", "1",
        "--loader-batches", "1"]


def run_benchmark(tmp_path, synthetic_root, *args):
    env = {**os.environ, "SEGKIT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(REPO / "tools" / "benchmark.py"), CONFIG,
           *tiny_overrides(synthetic_root, str(tmp_path / "out")), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_benchmark_with_baseline_reports_positive_ratios(tmp_path, synthetic_root):
    onnx = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
    result, stdout = run_benchmark(tmp_path, synthetic_root, "--baseline", *FAST, "--json-out",
                                   str(tmp_path / "bench.json"), *(["--onnx"] if onnx else []))
    assert json.loads((tmp_path / "bench.json").read_text()) == result
    if onnx:
        assert result["onnx"]["infer_img_s"] > 0 and result["ratios"].pop("onnx_latency") > 0
        assert result["ratios"].pop("onnx_infer") > 0
    for key in ("train_img_s", "infer_img_s", "latency_ms", "loader_img_s", "peak_mem_mb", "cache_fill_img_s",
                "loader_over_train", "precision", "channels_last"):
        assert key in result, key
    assert result["size"] == 32 and result["batch_size"] == 4 and result["cache"] == "disk"
    assert set(result["baseline"]) == {"train_img_s", "infer_img_s", "latency_ms", "loader_img_s"}
    assert set(result["ratios"]) == {"train", "infer", "latency", "loader"}
    assert all(isinstance(v, float) and v > 0 for v in result["ratios"].values())
    assert "plain loop" in stdout
    # The allocator setting is process-wide: the output says the plain loop ran with it too.
    assert result["malloc_keep_freed"] is (platform.libc_ver()[0] == "glibc")
    assert ("MALLOC_KEEP_FREED False" in stdout) is result["malloc_keep_freed"]


def test_benchmark_time_to_dice(tmp_path, synthetic_root, capsys, monkeypatch):
    """In-process (the CLI path is covered above): two epochs each, a target neither reaches."""
    from segkit.benchmark import main

    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "cache"))
    args = [CONFIG, *tiny_overrides(synthetic_root, str(tmp_path / "out")), "--to-dice", "0.999", "--max-epochs", "2"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    result = json.loads(stdout.strip().splitlines()[-1])
    td = result["to_dice"]
    assert td["target"] == 0.999 and td["max_epochs"] == 2
    for side in ("segkit", "baseline"):
        assert td[side]["epochs"] == 2 and len(td[side]["dice_per_epoch"]) == 2
        assert all(s > 0.01 for s in td[side]["epoch_seconds"])  # every epoch really trains
        assert 0.0 <= td[side]["final_dice"] <= 1.0 and td[side]["seconds_run"] > 0
        assert td[side]["reached"] is (td[side]["final_dice"] >= 0.999)
    assert "time to test Dice 0.999" in stdout


def test_benchmark_bad_option_is_one_line_error(capsys):
    from segkit.benchmark import main

    assert main([CONFIG, "--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "segkit: error: --steps is 0; expected a positive number"


def test_benchmark_is_a_segkit_command():
    import segkit.benchmark
    from segkit.cli import _command

    assert _command("benchmark") is segkit.benchmark.main


def test_benchmark_peer_runs_in_fp32_and_fast(tmp_path, synthetic_root, capsys, monkeypatch):
    """--peer times a peer library's model in the plain loop both ways; a tiny stand-in for
    smp's Unet keeps the test offline and fast (the smp factory itself needs the bench extra)."""
    import torch

    from segkit import benchmark

    built = []

    def tiny_peer(cfg):
        built.append(cfg.MODEL.NUM_CLASSES)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                   torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))

    monkeypatch.setitem(benchmark.PEERS, "smp", tiny_peer)
    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "cache"))
    args = [CONFIG, *tiny_overrides(synthetic_root, str(tmp_path / "out")), "--peer", "smp", *FAST]
    assert benchmark.main(args) == 0
    stdout = capsys.readouterr().out
    result = json.loads(stdout.strip().splitlines()[-1])
    assert built == [1]
    assert result["peer"]["name"] == "smp"
    for key in ("fp32", "fast"):
        assert result["peer"][f"train_img_s_{key}"] > 0
        assert result["peer_ratios"][f"train_vs_{key}"] == result["train_img_s"] / result["peer"][f"train_img_s_{key}"]
    assert "smp Unet(resnet34) in the plain loop" in stdout


def test_peer_smp_without_the_library_is_one_clear_error(capsys, monkeypatch):
    import builtins

    from segkit import benchmark

    real_import = builtins.__import__

    def no_smp(name, *a, **k):
        if name == "segmentation_models_pytorch":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_smp)
    from segkit.config.defaults import get_default_config

    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[bench\]"'):
        benchmark.PEERS["smp"](get_default_config())
