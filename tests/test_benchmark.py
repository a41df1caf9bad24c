"""``segkit benchmark`` on the tiny synthetic set: the result's structure and sanity, never its speed.

Benchmarks print numbers; what a test can hold them to is that every number is there, finite
and positive (Dice in [0, 1]), that the table and the JSON line are printed, and that bad
options are one error line. Commands run in-process through ``segkit.commands.main``; one
subprocess checks ``python -m segkit benchmark`` end to end.
"""
import ast
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs" / "unet_aug_cosine.yaml")
FAST = ["--warmup", "1", "--steps", "1", "--rounds", "1", "--infer-batches", "1", "--latency-repeats", "1",
        "--loader-batches", "1"]


def positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def benchmark(tmp_path, root, capsys, *args):
    """``segkit benchmark CONFIG <tiny overrides> args`` in-process: (result, stdout)."""
    from segkit.commands import main

    argv = ["benchmark", CONFIG, *tiny_overrides(root, str(tmp_path / "out")), *args]
    assert main(argv) == 0, capsys.readouterr().err[-3000:]
    stdout = capsys.readouterr().out
    return json.loads(stdout.strip().splitlines()[-1]), stdout


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.slow
def test_throughput_with_baseline_onnx_and_int8(tmp_path, synthetic_root, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    result, stdout = benchmark(tmp_path, synthetic_root, capsys, "--baseline", "--onnx", "--int8", *FAST,
                               "--json-out", str(tmp_path / "res" / "bench.json"))
    assert json.loads((tmp_path / "res" / "bench.json").read_text()) == result
    assert result["config"] == CONFIG and "INPUT.SIZE" in result["overrides"]
    assert result["size"] == 32 and result["batch_size"] == 4 and result["cache"] == "disk"
    assert result["precision"] in ("fp32", "bf16", "fp16") and isinstance(result["channels_last"], bool)
    for key in ("train_img_s", "infer_img_s", "latency_ms", "loader_img_s", "peak_mem_mb", "cache_fill_img_s",
                "loader_over_train", "baseline_peak_mem_mb", "wall_s"):
        assert positive(result[key]), key
    assert set(result["baseline"]) == {"train_img_s", "infer_img_s", "latency_ms", "loader_img_s"}
    assert all(positive(v) for v in result["baseline"].values())
    for key in ("onnx", "int8"):  # onnxruntime fp32 and INT8, each with its ratios over segkit's own path
        assert set(result[key]) == {"infer_img_s", "latency_ms", "vs_segkit"}
        assert positive(result[key]["infer_img_s"]) and positive(result[key]["latency_ms"])
        assert result[key]["vs_segkit"] == {"infer": result[key]["infer_img_s"] / result["infer_img_s"],
                                            "latency": result["latency_ms"] / result[key]["latency_ms"]}
    assert set(result["ratios"]) == {"train", "infer", "latency", "loader", "onnx_infer", "onnx_latency"}
    assert all(positive(v) for v in result["ratios"].values())
    assert result["ratios"]["train"] == result["train_img_s"] / result["baseline"]["train_img_s"]
    assert "segkit benchmark: " + CONFIG in stdout and "round 1: segkit train" in stdout
    assert "plain loop" in stdout and "latency ms (batch 1)" in stdout and "onnxruntime fp32: eval" in stdout
    assert "onnxruntime INT8: eval" in stdout
    # The allocator setting is process-wide: the output says the plain loop ran with it too.
    assert result["malloc_keep_freed"] is (platform.libc_ver()[0] == "glibc")
    assert ("MALLOC_KEEP_FREED False" in stdout) is result["malloc_keep_freed"]
    assert not (tmp_path / "out").exists()  # OUTPUT_DIR is not written: the benchmark runs no hooks


@pytest.mark.slow
def test_time_to_dice(tmp_path, synthetic_root, capsys):
    """Two epochs each, a target neither reaches."""
    result, stdout = benchmark(tmp_path, synthetic_root, capsys, "--to-dice", "0.999", "--max-epochs", "2")
    td = result["to_dice"]
    assert td["target"] == 0.999 and td["max_epochs"] == 2
    for side in ("segkit", "baseline"):
        assert td[side]["epochs"] == 2 and len(td[side]["dice_per_epoch"]) == 2
        assert len(td[side]["epoch_seconds"]) == 2 and all(map(positive, td[side]["epoch_seconds"]))
        assert 0.0 <= td[side]["final_dice"] <= 1.0 and positive(td[side]["seconds_run"])
        assert all(0.0 <= d <= 1.0 for d in td[side]["dice_per_epoch"])
        assert td[side]["reached"] is (td[side]["final_dice"] >= 0.999)
        assert (td[side]["seconds"] is None) is not td[side]["reached"]
    assert "time to test Dice 0.999" in stdout and "segkit   epoch   2" in stdout


def test_peer_runs_in_fp32_and_fast(tmp_path, synthetic_root, capsys, monkeypatch):
    """--peer times a peer library's model in the plain loop both ways; a tiny stand-in for
    smp's Unet keeps the test offline and fast (the smp factory itself needs the bench extra)."""
    import torch

    import segkit.benchmark

    built = []

    def tiny_peer(cfg):
        built.append(cfg.MODEL.NUM_CLASSES)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                   torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))

    monkeypatch.setitem(segkit.benchmark.PEERS, "smp", tiny_peer)
    result, stdout = benchmark(tmp_path, synthetic_root, capsys, "--peer", "smp", *FAST)
    assert built == [1]
    assert result["peer"]["name"] == "smp" and "baseline" not in result and "ratios" not in result
    for key in ("fp32", "fast"):
        assert positive(result["peer"][f"train_img_s_{key}"])
        assert result["peer_ratios"][f"train_vs_{key}"] == result["train_img_s"] / result["peer"][f"train_img_s_{key}"]
    assert "smp Unet(resnet34) in the plain loop" in stdout and "round 1: smp (fast)" in stdout


def test_run_benchmark_as_a_library_call(synthetic_root, tmp_path, capsys):
    """The package without the command: a loaded config in, the result dict out."""
    from segkit.benchmark import BenchmarkOptions, run_benchmark
    from segkit.config import load_config

    cfg = load_config(CONFIG, tiny_overrides(synthetic_root, str(tmp_path / "out")))
    result = run_benchmark(cfg, BenchmarkOptions(warmup=0, steps=1, rounds=1, infer_batches=1, latency_repeats=1,
                                                 loader_batches=1), label="tiny")
    assert positive(result["train_img_s"]) and positive(result["infer_img_s"]) and "config" not in result
    assert "segkit benchmark: tiny on" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps is 0; expected a positive number"),
    (["--warmup", "-1"], "--warmup is -1; expected a positive number"),
    (["--to-dice", "1.5"], "--to-dice is 1.5; expected a Dice between 0 and 1"),
    (["--peer", "nope"], "--peer 'nope' is not a known peer; choose from ['smp']"),
])
def test_bad_option_is_one_line_error(args, message, capsys):
    from segkit.commands import main

    assert main(["benchmark", CONFIG, *args]) == 2
    assert capsys.readouterr().err.strip() == f"segkit: error: {message}"


def test_peer_smp_without_the_library_is_one_clear_error(monkeypatch):
    import builtins

    from segkit.benchmark import PEERS
    from segkit.config.defaults import get_default_config

    real_import = builtins.__import__

    def no_smp(name, *a, **k):
        if name == "segmentation_models_pytorch":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_smp)
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[bench\]"'):
        PEERS["smp"](get_default_config())


def test_benchmark_is_a_segkit_command(capsys):
    from segkit.commands import COMMANDS, benchmark, main

    assert COMMANDS["benchmark"] == "benchmark" and benchmark.HELP
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--baseline", "--peer", "--compile", "--onnx", "--to-dice", "--max-epochs", "--json-out",
                   "--plugin", "KEY VALUE"):
        assert option in out, option


def test_package_imports_no_command_and_no_private_names():
    """Layers: segkit.benchmark is an application; it never reaches up into segkit.commands, nor
    into another package's private names."""
    package = REPO / "segkit" / "benchmark"
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.name} says why it exists"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "commands" not in module and "cli" not in module.split("."), (path.name, module)
                if node.level != 1:  # outside this package
                    assert not any(a.name.startswith("_") for a in node.names), (path.name, module)
        assert len(path.read_text().splitlines()) <= 200, path.name
    assert not (REPO / "segkit" / "benchmark.py").exists()


def test_python_m_segkit_benchmark(tmp_path, synthetic_root):
    """The one subprocess: ``python -m segkit benchmark`` with the tiniest settings."""
    env = {**os.environ, "SEGKIT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "segkit", "benchmark", CONFIG, *tiny_overrides(synthetic_root, str(tmp_path / "out")),
           *FAST, "--warmup", "0", "--json-out", str(tmp_path / "bench.json")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert json.loads(Path(tmp_path / "bench.json").read_text()) == result
    assert positive(result["train_img_s"]) and "train img/s" in proc.stdout
