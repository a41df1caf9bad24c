"""DDP: sharding that reproduces the single-process batches, and a 2-process gloo run via
torchrun that matches a 1-process run, writes one set of files, and resumes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkit.data.sampler import EpochSampler
from segkit.engine import Trainer, load_checkpoint, setup
from segkit.utils.distributed import gather_list, per_process_batch

from .conftest import REPO

PLUGIN = str(Path(__file__).parent / "plugins" / "ddp_plugin.py")
CONFIG = str(REPO / "configs" / "unet_noaug_cosine.yaml")


# ---------------------------------------------------------------- sampler (no processes)
@pytest.mark.parametrize("size", [18, 19, 23])
def test_shards_rebuild_the_single_process_batches(size):
    """Batch k of 2 processes with 2 images each = batch k of 1 process with 4 images."""
    one = list(EpochSampler(size, seed=3, drop_last=True))
    shards = [list(EpochSampler(size, seed=3, rank=r, world_size=2, drop_last=True)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == size // 2
    steps = size // 4  # drop_last: floor(size / global batch) on both sides
    for k in range(steps):
        joined = sorted(shards[0][2 * k:2 * k + 2] + shards[1][2 * k:2 * k + 2])
        assert joined == sorted(one[4 * k:4 * k + 4])


def test_shard_resume_and_padding():
    s = EpochSampler(10, seed=0, rank=1, world_size=3)  # padded: 12 positions, 4 per rank
    s.set_epoch(2)
    full = list(s)
    assert len(full) == len(s) == 4 and all(e == 2 for e, _ in full)
    s.set_epoch(2, start=3)  # resume after 3 items of this shard
    assert list(s) == full[3:] and len(s) == 1
    evals = [list(EpochSampler(10, shuffle=False, rank=r, world_size=3, pad=False)) for r in range(3)]
    assert sorted(i for part in evals for _, i in part) == list(range(10))  # every image once
    assert gather_list([{"name": "a"}, {"name": "b"}, {"name": "a"}], key=lambda r: r["name"]) == \
        [{"name": "a"}, {"name": "b"}]


def test_global_batch_must_split_evenly(monkeypatch):
    from segkit.utils import distributed

    assert per_process_batch(8) == 8  # one process
    monkeypatch.setattr(distributed, "get_world_size", lambda: 2)
    assert per_process_batch(8) == 4
    with pytest.raises(ValueError, match=r"SOLVER.BATCH_SIZE 7 .* 2 processes; it must be a multiple of 2 \(e.g. 6\)"):
        per_process_batch(7)


# ---------------------------------------------------------------- torchrun, 2 gloo processes
def ddp_opts(root, out, *extra):
    """A BatchNorm-free 32 px model (see the plugin), global batch 4, 18 train / 6 val images."""
    return ["DATA.ROOT", root, "DATA.NUM_WORKERS", "0", "DATA.VAL_FRACTION", "0.25",
            "MODEL.BACKBONE.NAME", "tiny_gn", "MODEL.DECODER.NAME", "tiny_gn", "INPUT.SIZE", "32",
            "SOLVER.EPOCHS", "2", "SOLVER.BATCH_SIZE", "4", "SOLVER.BASE_LR", "0.1", "SOLVER.OPTIMIZER.NAME", "sgd", "TEST.BATCH_SIZE", "4", "SOLVER.AMP.ENABLED", "False",
            "DEVICE", "cpu", "OUTPUT_DIR", str(out), *extra]


def torchrun(*args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tools" / "train.py"), "--plugin", PLUGIN, CONFIG, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def epochs(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # three training runs, two of them torchrun launches of two processes each
def test_torchrun_two_processes_match_one_and_resume(synthetic_root, tmp_path):
    single = tmp_path / "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS 1): the same float sums
    try:
        Trainer(setup(CONFIG, ddp_opts(synthetic_root, single), [PLUGIN])).train()
    finally:
        torch.set_num_threads(threads)  # later tests in this process compare against 2-thread runs

    ddp = tmp_path / "ddp"
    # Stop after epoch 1 on every rank, then resume the same run for epoch 2 under DDP again.
    first = torchrun(*ddp_opts(synthetic_root, ddp, "CUSTOM_HOOKS", "[{'NAME': 'stop_after', 'EPOCH': 1}]"))
    assert load_checkpoint(str(ddp / "last.pth"))["epoch"] == 1
    torchrun(*ddp_opts(synthetic_root, ddp), "--resume")

    # Same weights as one process with the same global batch, to float rounding.
    a, b = load_checkpoint(str(single / "last.pth"))["model"], load_checkpoint(str(ddp / "last.pth"))["model"]
    assert a.keys() == b.keys() and not any(k.startswith("module.") for k in b)  # loadable in one process
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < 1e-4, diff
    # Validation covers all 6 images (both shards gathered), with the same numbers.
    ref, got = epochs(single), epochs(ddp)
    assert [r["epoch"] for r in got] == [1, 2]  # one line per epoch: only rank 0 writes
    for r, g in zip(ref, got):
        for key in ("train/loss", "val/loss", "val/dice"):
            assert g[key] == pytest.approx(r[key], abs=1e-4), key
    # One set of files: rank 1 wrote nothing (no per-rank duplicates, no second event file).
    names = sorted(p.name for p in ddp.iterdir())
    assert names == sorted(p.name for p in single.iterdir()) == \
        ["best.pth", "config.yaml", "last.pth", "log.txt", "metrics.jsonl", "tensorboard"]
    assert len(list((ddp / "tensorboard").iterdir())) == 2  # one event file per launch
    log = (ddp / "log.txt").read_text()
    assert log.count("epoch 1/2") == 1 and log.count("epoch 2/2") == 1
    assert "stop_after 1" in first.stderr and first.stderr.count("stopping after epoch 1") == 1
