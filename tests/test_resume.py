"""Exact resume, interrupts, checkpoint safety, early stopping and the loss guard."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segkit.config import load_config
from segkit.engine import Trainer, load_checkpoint

from .conftest import REPO, tiny_overrides

PLUGIN = str(Path(__file__).parent / "plugins" / "hooks_plugin.py")
CONFIG = str(REPO / "configs" / "unet_aug_cosine.yaml")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def opts(root, out, *extra, epochs=4):
    return tiny_overrides(root, str(out), epochs=epochs) + ["DETERMINISTIC", "True", *extra]


def train_cmd(*args):
    return [sys.executable, str(REPO / "tools" / "train.py"), "--plugin", PLUGIN,
            CONFIG, *args]


def train_here(*args):
    """The same command in this process (the interrupted runs above need processes of their own)."""
    from segkit.commands import main

    assert main(["train", "--plugin", PLUGIN, CONFIG, *args]) == 0


def weights(path):
    return load_checkpoint(str(path))["model"]


def max_abs_diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def epoch_lines(out):
    return [json.loads(l)["epoch"] for l in (Path(out) / "metrics.jsonl").read_text().splitlines()
            if json.loads(l)["type"] == "epoch"]


def start_and_wait(cmd, flag: Path, timeout=300):
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not flag.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"run ended before parking: {proc.communicate()}")
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="module")
def reference_run(synthetic_root, tmp_path_factory):
    """An uninterrupted 4-epoch deterministic run, the yardstick for every resume."""
    out = tmp_path_factory.mktemp("reference")
    train_here(*opts(synthetic_root, out))
    return out


def test_sigkill_after_epoch_then_resume_is_exact(synthetic_root, reference_run, tmp_path):
    # The run parks (SECONDS bounds only a run nobody signals) until the test stops it.
    out, flag = tmp_path / "killed", tmp_path / "parked"
    pause = f"[{{'NAME': 'pause_at', 'FLAG': '{flag}', 'EPOCH': 2, 'SECONDS': 3600}}]"
    proc = start_and_wait(train_cmd(*opts(synthetic_root, out, "CUSTOM_HOOKS", pause)), flag)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(str(out / "last.pth"))["epoch"] == 2
    # resume with a loader worker this time: augmentation must not depend on who loads a sample
    train_here(*opts(synthetic_root, out, "DATA.NUM_WORKERS", "1"), "--resume")
    assert max_abs_diff(weights(reference_run / "last.pth"), weights(out / "last.pth")) == 0.0
    assert epoch_lines(out) == [1, 2, 3, 4]
    ref = [json.loads(l) for l in (reference_run / "metrics.jsonl").read_text().splitlines()]
    got = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got if r["type"] == "step"] == [r["step"] for r in ref if r["type"] == "step"]
    assert [r["val/dice"] for r in got if r["type"] == "epoch"] == [r["val/dice"] for r in ref if r["type"] == "epoch"]


def test_sigint_mid_epoch_saves_and_resumes_exactly(synthetic_root, reference_run, tmp_path):
    out, flag = tmp_path / "interrupted", tmp_path / "parked"
    pause = f"[{{'NAME': 'pause_at', 'FLAG': '{flag}', 'STEP': 8, 'SECONDS': 3600}}]"   # 5 batches an epoch: mid epoch 2
    proc = start_and_wait(train_cmd(*opts(synthetic_root, out, "CUSTOM_HOOKS", pause)), flag)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()  # parked for an hour if SIGINT did not stop it
    assert proc.returncode == 130, stderr
    assert "Resume with" in stderr and "--resume" in stderr
    ckpt = load_checkpoint(str(out / "last.pth"))
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["iter"]) == (1, 3, 8)
    train_here(*opts(synthetic_root, out), "--resume", str(out / "last.pth"))
    assert max_abs_diff(weights(reference_run / "last.pth"), weights(out / "last.pth")) == 0.0
    assert epoch_lines(out) == [1, 2, 3, 4]


def test_two_seeded_deterministic_runs_are_bit_identical(synthetic_root, reference_run, tmp_path):
    cfg = load_config(CONFIG, opts(synthetic_root, tmp_path))
    Trainer(cfg).train()
    assert max_abs_diff(weights(reference_run / "last.pth"), weights(tmp_path / "last.pth")) == 0.0


def test_kill_during_save_leaves_last_checkpoint_loadable(tmp_path):
    """SIGKILL while the fourth save is half written: the third one is still there, whole.

    The child writes half of save 4 into its temporary file, says so and blocks; the kill
    lands exactly there, whatever the machine's speed."""
    path = tmp_path / "last.pth"
    script = (
        "import io, threading, torch\n"
        "from segkit.engine.checkpoint import atomic_save\n"
        "real_save = torch.save\n"
        "def half_then_block(obj, f):\n"
        "    buffer = io.BytesIO()\n"
        "    real_save(obj, buffer)\n"
        "    f.write(buffer.getvalue()[: buffer.tell() // 2])\n"
        "    f.flush()\n"
        "    print('mid-save', flush=True)\n"
        "    threading.Event().wait()\n"
        "for epoch in (1, 2, 3, 4):\n"
        "    if epoch == 4:\n"
        "        torch.save = half_then_block\n"
        f"    atomic_save({{'epoch': epoch, 'w': torch.arange(1000.0) * epoch}}, {str(path)!r})\n"
        "    print('saved', epoch, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    lines = []
    while not lines or lines[-1] != "mid-save":
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"the child ended before save 4: {lines} {proc.communicate()}")
        lines.append(line.strip())
    proc.kill()
    proc.wait()
    assert lines == ["saved 1", "saved 2", "saved 3", "mid-save"]
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the kill came mid-write
    assert 0 < partial.stat().st_size < path.stat().st_size
    ckpt = load_checkpoint(str(path))
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["w"], torch.arange(1000.0) * 3)


def test_weights_only_checkpoint_cannot_be_resumed_but_can_fine_tune(synthetic_root, reference_run, tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save({"model": weights(reference_run / "best.pth")}, bare)
    with pytest.raises(ValueError, match="MODEL.WEIGHTS"):
        Trainer(load_config(None, opts(synthetic_root, tmp_path / "a")), resume=str(bare))
    cfg = load_config(None, opts(synthetic_root, tmp_path / "b", "MODEL.WEIGHTS", str(bare), epochs=1))
    trainer = Trainer(cfg)
    assert trainer.start_epoch == 0
    ref = weights(reference_run / "best.pth")
    assert all(torch.equal(v.cpu(), ref[k]) for k, v in trainer.model.state_dict().items())


def test_early_stopping_and_keep_last(synthetic_root, tmp_path):
    hooks = load_config(None).HOOKS
    hooks = [dict(h) for h in hooks]
    for h in hooks:
        if h["NAME"] == "early_stopping":
            h.update(MONITOR="val/loss", MODE="min", PATIENCE=2, MIN_DELTA=1e9)   # nothing can improve enough
        if h["NAME"] == "checkpoint":
            h.update(KEEP_LAST=2)
    cfg = load_config(None, opts(synthetic_root, tmp_path, "HOOKS", repr(hooks), epochs=6))
    trainer = Trainer(cfg)
    trainer.train()
    assert "early stopping" in trainer.stop_reason
    assert epoch_lines(tmp_path) == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == ["epoch_0002.pth", "epoch_0003.pth"]
    state = load_checkpoint(str(tmp_path / "last.pth"))["hooks"]["EarlyStoppingHook"]
    assert state["bad_epochs"] == 2


def test_non_finite_loss_stops_with_step_and_checkpoint(synthetic_root, tmp_path):
    extra = ["LOSS.TERMS", "[{'NAME': 'nan_at_call', 'CALL': 8}]"]
    with pytest.raises(FloatingPointError) as err:
        train_here(*opts(synthetic_root, tmp_path, *extra))
    assert "Loss became nan at epoch 2, step 8" in str(err.value)
    assert f"Last good checkpoint: {tmp_path / 'last.pth'}" in str(err.value)
    assert load_checkpoint(str(tmp_path / "last.pth"))["epoch"] == 1


def test_non_finite_loss_can_skip_the_batch(synthetic_root, tmp_path, capsys):
    extra = ["LOSS.TERMS", "[{'NAME': 'nan_at_call', 'CALL': 3}]", "SOLVER.NONFINITE_LOSS", "skip"]
    train_here(*opts(synthetic_root, tmp_path, *extra, epochs=2))
    assert "skipping this batch" in capsys.readouterr().err
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "last.pth").values() if v.is_floating_point())


def test_non_finite_weights_never_overwrite_a_checkpoint(synthetic_root, tmp_path):
    cfg = load_config(None, opts(synthetic_root, tmp_path, "SOLVER.NONFINITE_LOSS", "skip", epochs=1))
    trainer = Trainer(cfg)
    trainer.train()
    before = (tmp_path / "last.pth").read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    trainer.max_epochs = 2
    trainer.start_epoch = 1
    with pytest.raises(FloatingPointError, match="not overwriting"):
        trainer.train()
    assert (tmp_path / "last.pth").read_bytes() == before


def test_accumulation_and_clipping(synthetic_root, tmp_path):
    cfg = load_config(None, opts(synthetic_root, tmp_path, "SOLVER.ACCUM_STEPS", "2", "SOLVER.CLIP_GRAD_NORM",
                                 "0.5", epochs=1))
    trainer = Trainer(cfg)
    trainer.train()
    batches = len(trainer.train_loader)
    assert trainer.iter == batches and trainer.num_updates == (batches + 1) // 2
    assert 0 < trainer.step_outputs["grad_norm"]
