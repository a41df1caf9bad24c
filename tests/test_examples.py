"""The shipped examples run as documented: a user backbone registered by a plugin file, trained by tools/train.py."""
import os
import subprocess
import sys

import torch

from .conftest import REPO


def test_custom_backbone_example_trains_one_epoch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "tools/train.py", "examples/custom_backbone/tiny_convnet.yaml",
           "SOLVER.EPOCHS", "1", "INPUT.SIZE", "32", "DATA.DATASET.NUM_TRAINVAL", "8",
           "DATA.ROOT", str(tmp_path / "data"), "OUTPUT_DIR", str(tmp_path / "run")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = torch.load(tmp_path / "run" / "last.pth", map_location="cpu", weights_only=False)
    assert ckpt["arch"] == {"backbone": "tiny_convnet", "decoder": "unet"}
    assert any(k.startswith("backbone.stages.3.") for k in ckpt["model"])
    assert "epoch 1/1" in proc.stderr + proc.stdout
