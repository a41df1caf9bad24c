"""Evaluator: original-resolution scoring, TTA, gathered records, tools/test.py outputs, 3 classes."""
import csv
import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from segkit.config import load_config
from segkit.data import TransformedDataset, build_transforms
from segkit.engine import Trainer, atomic_save, evaluate_checkpoint
from segkit.engine import evaluator as evaluator_module
from segkit.engine.checkpoint import make_checkpoint
from segkit.engine.evaluator import Evaluator
from segkit.engine.tta import TTAWrapper
from segkit.losses import build_loss
from segkit.models import build_model

from .conftest import tiny_overrides


class RedIsPet(nn.Module):
    """A 'model' that calls red pixels pet: its answer is known without training."""

    def forward(self, x):
        return 20.0 * x[:, :1]


def _items():
    """Two images of their own (non-square) sizes; the pet is painted pure red."""
    items = []
    for h, w, box in ((20, 40, (5, 15, 8, 30)), (50, 30, (10, 40, 3, 12))):
        mask = np.zeros((h, w), np.uint8)
        mask[box[0]:box[1], box[2]:box[3]] = 1
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 2] = 90
        image[mask == 1] = (255, 0, 0)
        items.append({"image": image, "mask": mask, "name": f"img{h}x{w}"})
    return items


def _loader(cfg):
    return DataLoader(TransformedDataset(_items(), build_transforms(cfg, train=False)), batch_size=2)


def test_original_resolution_scores_each_image_at_its_own_size():
    cfg = load_config(None, ["INPUT.SIZE", "32"])
    ev = Evaluator(build_loss(cfg), resolution="both")
    result = ev.run(RedIsPet(), _loader(cfg), torch.device("cpu"))
    assert result["n"] == 2 and result["resolution"] == "both"
    by_name = {r["name"]: r for r in ev.records}
    assert (by_name["img20x40"]["height"], by_name["img20x40"]["width"]) == (20, 40)
    assert by_name["img20x40"]["orig_valid"] == 20 * 40       # scored against the untouched mask
    assert by_name["img20x40"]["valid"] == 32 * 32            # network size: the resized mask
    assert by_name["img50x30"]["orig_tp"] == [pytest.approx(30 * 9, abs=20)]
    for key in ("dice_mean", "orig_dice_mean", "orig_dice_micro", "orig_precision_mean", "orig_accuracy_micro"):
        assert result[key] > 0.9, key
    original = Evaluator(build_loss(cfg), resolution="original").run(RedIsPet(), _loader(cfg), torch.device("cpu"))
    assert original["dice_mean"] == pytest.approx(result["orig_dice_mean"])
    assert "orig_dice_mean" not in original


def test_records_are_gathered_before_micro_metrics(monkeypatch):
    cfg = load_config(None, ["INPUT.SIZE", "32"])
    single = Evaluator(build_loss(cfg)).run(RedIsPet(), _loader(cfg), torch.device("cpu"))
    # Two "processes" that saw copies of the same images: twice the records, the same averages.
    def two_processes(records, key=None):
        return [dict(r, name=f"{r['name']}@{rank}") for rank in (0, 1) for r in records]

    monkeypatch.setattr(evaluator_module, "gather_list", two_processes)
    doubled = Evaluator(build_loss(cfg)).run(RedIsPet(), _loader(cfg), torch.device("cpu"))
    assert doubled["n"] == 2 * single["n"]
    assert doubled["dice_micro"] == pytest.approx(single["dice_micro"])
    assert doubled["dice_mean"] == pytest.approx(single["dice_mean"])


class Ramp(nn.Module):
    """Logits that grow left to right: not flip-invariant, so flip TTA visibly averages."""

    def forward(self, x):
        w = x.shape[-1]
        ramp = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
        return (ramp + 3.0).expand(x.shape[0], 1, x.shape[-2], w).clone()


def test_flip_tta_averages_with_the_mirrored_prediction():
    x = torch.zeros(2, 3, 40, 56)
    out = TTAWrapper(Ramp(), flip=True)(x)
    assert out.shape == (2, 1, 40, 56)
    assert torch.allclose(out, torch.full_like(out, 3.0))     # ramp(j) + ramp(W-1-j) = 2 * 3
    assert not torch.allclose(Ramp()(x), torch.full_like(out, 3.0))


def test_multiscale_tta_maps_back_to_input_size():
    class Const(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2, *x.shape[-2:]), 1.5)

    out = TTAWrapper(Const(), flip=True, scales=[0.75, 1.0, 1.25])(torch.zeros(1, 3, 45, 70))
    assert out.shape == (1, 2, 45, 70) and torch.allclose(out, torch.full_like(out, 1.5))
    with pytest.raises(ValueError, match="SCALES"):
        TTAWrapper(Const(), scales=[0.0])


def _untrained_checkpoint(cfg, path):
    torch.manual_seed(0)
    atomic_save(make_checkpoint(build_model(cfg), cfg), str(path))
    return str(path)


def test_test_command_both_resolutions_tta_and_out_dir(synthetic_root, tmp_path, segkit_cli):
    over = tiny_overrides(synthetic_root, str(tmp_path / "run"))
    ckpt = _untrained_checkpoint(load_config(None, over), tmp_path / "model.pth")
    config = tmp_path / "tiny.yaml"
    config.write_text("SEED: 42\n")
    out = tmp_path / "preds"
    proc = segkit_cli("test", config, ckpt, *over, "--resolution", "both", "--tta", "flip", "--tta-scales", "0.75", "1",
                      "--out-dir", out)
    result = proc.json()
    for key in ("dice_mean", "dice_std", "loss_mean", "loss_std", "iou_mean", "iou_std", "n", "precision_mean",
                "recall_mean", "accuracy_mean", "dice_micro", "orig_dice_mean", "orig_dice_micro"):
        assert isinstance(result[key], (int, float)), key
    assert result["n"] == 8 and result["tta"] == {"flip": True, "scales": [0.75, 1.0]}
    assert "at original resolution" in proc.stdout
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    dices = [float(r["orig_dice"]) for r in rows]
    assert dices == sorted(dices)                              # worst first
    assert np.mean(dices) == pytest.approx(result["orig_dice_mean"], abs=1e-5)
    from PIL import Image

    for r in rows:
        with Image.open(out / "masks" / f"{r['name']}.png") as m:
            assert m.size == (int(r["width"]), int(r["height"])) and set(np.unique(np.array(m))) <= {0, 255}
        assert (out / "overlays" / f"{r['name']}.png").is_file()
    with Image.open(out / "best_worst.png") as grid:
        assert grid.width > 400 and grid.height > 300


def test_three_class_trimap_trains_and_reports_per_class(synthetic_root, tmp_path):
    over = tiny_overrides(synthetic_root, str(tmp_path), epochs=1) + [
        "MODEL.NUM_CLASSES", "3", "DATA.DATASET.BOUNDARY", "class", "HOOKS", "[{'NAME': 'evaluation'}, "
        "{'NAME': 'checkpoint', 'MONITOR': 'val/dice', 'MODE': 'max'}]"]
    cfg = load_config(None, over)
    trainer = Trainer(cfg)
    assert set(np.unique(trainer.train_loader.dataset.dataset[0]["mask"])) == {0, 1, 2}
    metrics = trainer.train()
    assert 0.0 <= metrics["val/dice"] <= 1.0
    cfg = load_config(None, over + ["TEST.RESOLUTION", "both"])
    result = evaluate_checkpoint(cfg, os.path.join(str(tmp_path), "best.pth"))
    assert [r["class"] for r in result["per_class"]] == ["background", "pet", "boundary"]
    assert len(result["orig_per_class"]) == 3 and "dice_micro" not in result  # mmseg's names instead
    # Every class occurs in the synthetic trimaps, so mDice / mIoU are plain means over the classes.
    assert result["mDice"] == pytest.approx(np.mean([r["Dice"] for r in result["per_class"]]))
    assert result["orig_mIoU"] == pytest.approx(np.mean([r["IoU"] for r in result["orig_per_class"]]))
    cm = np.array(result["confusion"])
    assert cm.shape == (3, 3) and [r["gt_pixels"] for r in result["per_class"]] == cm.sum(1).tolist()
    assert result["aAcc"] == pytest.approx(np.trace(cm) / cm.sum())
