import json
import os

import pytest
import torch

from segkit.config import load_config
from segkit.engine import Trainer, atomic_save, load_checkpoint, load_model_weights
from segkit.engine.checkpoint import CheckpointError, make_checkpoint
from segkit.engine.hooks import HookBase, prediction_grid
from segkit.models import build_model
from segkit.registry import HOOKS

from .conftest import tiny_overrides


def tiny_cfg(root, out, *extra):
    return load_config(None, tiny_overrides(root, str(out)) + list(extra))


class Recorder(HookBase):
    """Records the order of hook calls and what the trainer exposed at each."""

    def __init__(self, calls=None):
        self.calls = calls if calls is not None else []

    def before_train(self):
        self.calls.append("before_train")

    def before_epoch(self):
        self.calls.append(f"before_epoch{self.trainer.epoch}")

    def after_step(self):
        assert set(self.trainer.step_outputs) >= {"loss", "terms", "dice", "batch_size"}

    def after_epoch(self):
        m = self.trainer.epoch_metrics
        self.calls.append(f"after_epoch{self.trainer.epoch}:{'val/dice' in m and 'lr' in m and 'train/loss' in m}")

    def after_train(self):
        self.calls.append("after_train")


if "test_recorder" not in HOOKS:
    HOOKS.register(Recorder, name="test_recorder")


def test_trainer_runs_hooks_in_order_and_writes_outputs(synthetic_root, tmp_path):
    calls = []
    cfg = tiny_cfg(synthetic_root, tmp_path, "CUSTOM_HOOKS", "[{'NAME': 'test_recorder'}]")
    trainer = Trainer(cfg)
    trainer.hooks[-1].calls = calls
    metrics = trainer.train()
    assert calls == ["before_train", "before_epoch0", "after_epoch0:True", "before_epoch1",
                     "after_epoch1:True", "after_train"]
    assert 0.0 <= metrics["val/dice"] <= 1.0 and metrics["train/loss"] > 0
    for name in ("last.pth", "best.pth", "log.txt", "metrics.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tensorboard"))
    epochs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["type"] == "epoch"] == [1, 2]
    ckpt = load_checkpoint(str(tmp_path / "last.pth"))
    assert ckpt["epoch"] == 2 and ckpt["arch"] == {"backbone": "unet", "decoder": "unet"}
    assert "SOLVER" in ckpt["config"] and ckpt["segkit_version"]


def test_tensorboard_has_scalars_graph_and_images(synthetic_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(tiny_cfg(synthetic_root, tmp_path)).train()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert {"Train/Loss", "Train/Dice", "Val/Loss", "Val/Dice", "LR"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("Val/Dice")] == [1, 2]
    assert tags["images"] == ["Val/Image_GT_Prob_Mask"]
    assert acc.Graph() is not None


def test_checkpoint_round_trip_and_architecture_mismatch(tmp_path):
    cfg = load_config(None, ["MODEL.BACKBONE.CHANNELS", "[4, 8, 16, 32, 64]"])
    model = build_model(cfg)
    path = str(tmp_path / "m.pth")
    atomic_save(make_checkpoint(model, cfg, epoch=3), path)
    assert os.listdir(tmp_path) == ["m.pth"]   # no temporary file left behind
    fresh = build_model(cfg)
    load_model_weights(fresh, path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    other = build_model(load_config(None, ["MODEL.BACKBONE.NAME", "resnet18"]))
    with pytest.raises(CheckpointError, match=r"architecture \{'backbone': 'unet'.*'backbone': 'resnet18'.*missing"):
        load_model_weights(other, path)


def test_checkpoint_refuses_code_and_garbage(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"model": {}, "hook": Recorder}, bad)   # a pickled class: code, not weights
    with pytest.raises(CheckpointError, match="could not be read safely"):
        load_checkpoint(str(bad))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint(str(junk))


def test_atomic_save_keeps_old_file_when_save_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pth")
    atomic_save({"epoch": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pth"]


def test_prediction_grid_layout():
    batch = {"image": torch.zeros(2, 3, 8, 8), "mask": torch.tensor([[[0, 1] * 4] * 8] * 2),
             "prob": torch.rand(2, 1, 8, 8)}
    batch["mask"][0, 0, 0] = 255
    grid = prediction_grid(batch, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert grid.shape == (3, 2 * 8 + 3 * 2, 4 * 8 + 5 * 2)  # 2 rows × 4 columns with 2 px padding
    gt = grid[:, 2:10, 12:20]
    assert gt[0, 0, 0].item() == pytest.approx(0.5)        # ignored pixel shows grey
    assert grid[:, 2:10, 2:10].max().item() == pytest.approx(0.5)  # zeros denormalise to the mean


def test_disk_full_during_training_keeps_previous_checkpoint(synthetic_root, tmp_path, monkeypatch):
    import errno

    import segkit.engine.checkpoint as ckpt_module

    trainer = Trainer(tiny_cfg(synthetic_root, tmp_path, "SOLVER.EPOCHS", "2"))
    real_save, calls = torch.save, []

    def save_then_fill_disk(obj, f):
        calls.append(obj["epoch"])
        if obj["epoch"] == 2:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(ckpt_module.torch, "save", save_then_fill_disk)
    with pytest.raises(OSError, match="No space left"):
        trainer.train()
    monkeypatch.undo()
    assert load_checkpoint(str(tmp_path / "last.pth"))["epoch"] == 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
