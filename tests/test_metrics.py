"""Every metric against values worked out by hand, including empty predictions and targets."""
import numpy as np
import pytest
import torch

from segkit.metrics import (accuracy_per_image, confusion_counts, micro_scores, per_image_scores, pixel_counts,
                            precision_per_image, recall_per_image)

IGN = 255


def test_binary_metrics_hand_computed_with_ignore():
    pred = torch.tensor([[[1, 1, 0], [0, 1, 0]]])
    target = torch.tensor([[[1, 0, 0], [IGN, 1, 1]]])
    # Counted: all but (1,0). tp 2 ((0,0),(1,1)); fp 1 ((0,1)); fn 1 ((1,2)); right: (0,0),(0,2),(1,1) of 5.
    s = per_image_scores(pred, target)
    assert s["dice"].item() == pytest.approx(4 / 6)
    assert s["iou"].item() == pytest.approx(2 / 4)
    assert s["precision"].item() == pytest.approx(2 / 3)
    assert s["recall"].item() == pytest.approx(2 / 3)
    assert s["accuracy"].item() == pytest.approx(3 / 5)
    assert precision_per_image(pred, target).item() == pytest.approx(2 / 3)
    assert recall_per_image(pred, target).item() == pytest.approx(2 / 3)
    assert accuracy_per_image(pred, target).item() == pytest.approx(3 / 5)
    correct, valid = pixel_counts(pred, target)
    assert (correct.item(), valid.item()) == (3, 5)


@pytest.mark.parametrize("pred_fill, target_fill, expected", [
    (0, 0, {"dice": 1, "iou": 1, "precision": 1, "recall": 1, "accuracy": 1}),   # nothing to find, nothing found
    (0, 1, {"dice": 0, "iou": 0, "precision": 0, "recall": 0, "accuracy": 0}),   # all missed
    (1, 0, {"dice": 0, "iou": 0, "precision": 0, "recall": 0, "accuracy": 0}),   # pure false alarm
    (1, 1, {"dice": 1, "iou": 1, "precision": 1, "recall": 1, "accuracy": 1}),
])
def test_empty_prediction_and_empty_target(pred_fill, target_fill, expected):
    pred = torch.full((1, 4, 4), pred_fill)
    target = torch.full((1, 4, 4), target_fill)
    got = {k: v.item() for k, v in per_image_scores(pred, target).items()}
    assert got == pytest.approx(expected)


def test_only_ignored_pixels_score_one():
    got = per_image_scores(torch.ones(1, 3, 3, dtype=torch.long), torch.full((1, 3, 3), IGN))
    assert all(v.item() == 1.0 for v in got.values())


def test_micro_sums_counts_before_dividing():
    # Image A: a 1-pixel pet found exactly (dice 1). Image B: a 3-pixel pet missed (dice 0).
    pred = torch.tensor([[[1, 0, 0, 0]], [[0, 0, 0, 0]]])
    target = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 1, 0]]])
    per_image = per_image_scores(pred, target)
    assert per_image["dice"].tolist() == [1.0, 0.0]                    # per-image mean 0.5
    tp, fp, fn = confusion_counts(pred, target)
    correct, valid = pixel_counts(pred, target)
    micro = micro_scores(tp, fp, fn, correct, valid)
    assert micro["dice"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 3))     # 0.4, not 0.5
    assert micro["iou"] == pytest.approx(1 / 4)
    assert micro["precision"] == pytest.approx(1.0)
    assert micro["recall"] == pytest.approx(1 / 4)
    assert micro["accuracy"] == pytest.approx(5 / 8)
    assert micro["dice_per_class"] == pytest.approx([0.4])


def test_multiclass_per_class_and_mean():
    pred = torch.tensor([[[0, 1], [2, 2]]])
    target = torch.tensor([[[0, 1], [1, 2]]])
    # class 0: tp1 -> dice 1, P 1, R 1; class 1: tp1 fn1 -> dice 2/3, P 1, R 1/2; class 2: tp1 fp1 -> 2/3, P 1/2, R 1
    s = per_image_scores(pred, target, num_classes=3)
    assert s["dice"].item() == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert s["precision"].item() == pytest.approx((1 + 1 + 0.5) / 3)
    assert s["recall"].item() == pytest.approx((1 + 0.5 + 1) / 3)
    assert s["accuracy"].item() == pytest.approx(3 / 4)
    tp, fp, fn = confusion_counts(pred, target, num_classes=3)
    correct, valid = pixel_counts(pred, target)
    micro = micro_scores(tp, fp, fn, correct, valid)
    assert micro["dice_per_class"] == pytest.approx([1, 2 / 3, 2 / 3])
    assert micro["iou_per_class"] == pytest.approx([1, 1 / 2, 1 / 2])
    assert micro["iou"] == pytest.approx(2 / 3)


def test_multiclass_absent_class_is_left_out_of_the_mean():
    pred = torch.tensor([[[0, 0], [1, 1]]])
    target = torch.tensor([[[0, 0], [1, 1]]])
    # class 2 appears nowhere: the mean is over classes 0 and 1 only, so a perfect image scores 1.
    assert per_image_scores(pred, target, num_classes=3)["dice"].item() == 1.0
    tp, fp, fn = confusion_counts(pred, target, num_classes=3)
    micro = micro_scores(tp, fp, fn, *pixel_counts(pred, target))
    assert micro["dice"] == 1.0 and micro["dice_per_class"] == [1.0, 1.0, 1.0]


def test_confusion_matrix_and_mmseg_class_table_by_hand():
    """Rows are the truth, columns the prediction; ignored pixels and stray labels count nowhere.
    mmseg's definitions: a class in neither truth nor prediction has IoU/Dice NaN (left out of
    the means), a class only predicted has Acc NaN."""
    from segkit.metrics import class_scores, confusion_matrix

    target = torch.tensor([[[0, 0, 1, 1, 255, 9]]])
    pred = torch.tensor([[[0, 1, 1, 2, 0, 0]]])
    cm = confusion_matrix(pred, target, num_labels=4, ignore_index=255)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    s = class_scores(cm)
    assert s["IoU"][:3] == pytest.approx([1 / 2, 1 / 3, 0.0]) and np.isnan(s["IoU"][3])
    assert s["Dice"][:3] == pytest.approx([2 / 3, 1 / 2, 0.0])
    assert s["Acc"][:2] == pytest.approx([1 / 2, 1 / 2]) and np.isnan(s["Acc"][2])
    assert s["mIoU"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3) and s["mAcc"] == pytest.approx(0.5)
    assert s["aAcc"] == pytest.approx(2 / 4) and s["gt_pixels"] == [2, 2, 0, 0] and s["pred_pixels"] == [1, 2, 1, 0]
