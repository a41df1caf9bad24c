import math

import pytest
import torch
from torch import nn

from segkit.config import load_config
from segkit.losses import build_loss
from segkit.metrics import dice_per_image, iou_per_image, predict_labels
from segkit.registry import LOSSES

IGN = 255


def bce(x, y):
    """Hand formula for BCE with logits."""
    p = 1 / (1 + math.exp(-x))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_dice_and_iou_hand_computed_with_ignore():
    pred = torch.tensor([[[1, 1, 0], [0, 1, 0]]])
    target = torch.tensor([[[1, 0, 0], [IGN, 1, 1]]])
    # counted pixels: all but (1,0). tp = 2 ((0,0),(1,1)); fp = 1 ((0,1)); fn = 1 ((1,2))
    assert dice_per_image(pred, target).item() == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert iou_per_image(pred, target).item() == pytest.approx(2 / 4)


def test_dice_empty_cases():
    empty = torch.zeros(1, 4, 4, dtype=torch.long)
    full = torch.ones(1, 4, 4, dtype=torch.long)
    assert dice_per_image(empty, empty).item() == 1.0      # nothing to find, nothing found
    assert dice_per_image(full, empty).item() == 0.0       # false alarm
    assert dice_per_image(empty, full).item() == 0.0       # all missed
    only_ignored = torch.full((1, 4, 4), IGN)
    assert dice_per_image(full, only_ignored).item() == 1.0


def test_multiclass_dice_averages_present_classes():
    pred = torch.tensor([[[0, 1], [2, 2]]])
    target = torch.tensor([[[0, 1], [1, 2]]])
    # class 0: tp1 -> 1.0; class 1: tp1 fn1 -> 2/3; class 2: tp1 fp1 -> 2/3
    assert dice_per_image(pred, target, num_classes=3).item() == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_predict_labels_threshold_and_argmax():
    logits = torch.tensor([[[[0.1, -0.1]]]])
    assert predict_labels(logits).tolist() == [[[1, 0]]]
    assert predict_labels(logits, threshold=0.6).tolist() == [[[0, 0]]]
    multi = torch.tensor([[[[0.0]], [[2.0]], [[1.0]]]])
    assert predict_labels(multi).tolist() == [[[1]]]


def test_bce_matches_torch_and_hand_values_and_ignores():
    term = LOSSES.build({"NAME": "bce"}, ignore_index=IGN)
    logits = torch.randn(2, 1, 5, 6)
    target = torch.randint(0, 2, (2, 5, 6))
    ref = nn.BCEWithLogitsLoss()(logits[:, 0], target.float())
    assert term(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)
    # hand case with one ignored pixel
    logits = torch.tensor([[[[2.0, -1.0, 5.0]]]])
    target = torch.tensor([[[1, 0, IGN]]])
    expected = (bce(2.0, 1) + bce(-1.0, 0)) / 2
    assert term(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert term.per_image(logits, target).tolist() == pytest.approx([expected], rel=1e-6)


def test_soft_dice_loss_hand_value():
    term = LOSSES.build({"NAME": "dice", "smooth": 0.0}, ignore_index=IGN)
    logits = torch.tensor([[[[0.0, 0.0, 100.0]]]])   # probs 0.5, 0.5, ~1 (ignored)
    target = torch.tensor([[[1, 0, IGN]]])
    # inter = 0.5, sum p = 1.0, sum g = 1 -> dice = 1/2 -> loss 0.5
    assert term(logits, target).item() == pytest.approx(0.5, rel=1e-6)
    perfect = torch.tensor([[[[50.0, -50.0]]]])
    assert term(perfect, torch.tensor([[[1, 0]]])).item() == pytest.approx(0.0, abs=1e-6)


def test_weighted_sum_from_config():
    cfg = load_config(None, ["LOSS.TERMS", "[{'NAME': 'bce', 'WEIGHT': 0.5}, {'NAME': 'dice', 'WEIGHT': 2.0}]"])
    loss = build_loss(cfg)
    # Logits 0: every probability is 0.5, so BCE is ln 2 at every pixel. Image A has 1 pet
    # pixel of 4, image B 2 of 4. Soft Dice (smooth 1) over the batch: inter 0.5·3 = 1.5,
    # Σp + Σg = 4 + 3 → 1 - (3 + 1)/(7 + 1) = 0.5. Per image: A 1 - (1 + 1)/(3 + 1) = 0.5,
    # B 1 - (2 + 1)/(4 + 1) = 0.4.
    logits = torch.zeros(2, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [0, 0]]])
    total, terms = loss(logits, target)
    assert terms == pytest.approx({"bce": math.log(2), "dice": 0.5}, rel=1e-6)
    assert total.item() == pytest.approx(0.5 * math.log(2) + 2.0 * 0.5, rel=1e-6)
    assert loss.per_image(logits, target).tolist() == pytest.approx(
        [0.5 * math.log(2) + 2.0 * 0.5, 0.5 * math.log(2) + 2.0 * 0.4], rel=1e-6)
    bad = load_config(None, ["LOSS.TERMS", "[{'NAME': 'bce_loss'}]"])
    with pytest.raises(KeyError, match=r"LOSS.TERMS\[0\].*Did you mean 'bce'"):
        build_loss(bad)


def test_multiclass_cross_entropy_ignores():
    term = LOSSES.build({"NAME": "bce"}, ignore_index=IGN)
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 1], [2, IGN]]])
    ref = nn.CrossEntropyLoss(ignore_index=IGN)(logits, target)
    assert term(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)
