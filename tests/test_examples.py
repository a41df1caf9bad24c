"""The shipped examples run as documented: a user backbone registered by a plugin file, trained by `segkit train`."""
import torch

from .conftest import REPO


def test_custom_backbone_example_trains_one_epoch(tmp_path, monkeypatch, segkit_cli):
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))  # the example's CUSTOM_IMPORTS names a module under examples/
    res = segkit_cli("train", "examples/custom_backbone/tiny_convnet.yaml",
                     "SOLVER.EPOCHS", "1", "INPUT.SIZE", "32", "DATA.DATASET.NUM_TRAINVAL", "8",
                     "DATA.ROOT", tmp_path / "data", "OUTPUT_DIR", tmp_path / "run")
    ckpt = torch.load(tmp_path / "run" / "last.pth", map_location="cpu", weights_only=False)
    assert ckpt["arch"] == {"backbone": "tiny_convnet", "decoder": "unet"}
    assert any(k.startswith("backbone.stages.3.") for k in ckpt["model"])
    assert "epoch 1/1" in res.stderr + res.stdout
