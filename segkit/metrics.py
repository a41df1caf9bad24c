"""Segmentation metrics as pure functions on tensors: per image, and for a whole dataset.

Two ways to average, because the literature uses both:

* **per image** (then mean ± std over images): what the lab report quotes; a small pet weighs
  as much as a large one, and the std shows how uneven the model is.
* **micro** (dataset level): true/false positive counts summed over every pixel of every
  image first, then one ratio; what smp's ``reduction="micro"`` and mmseg's IoU report. With
  several classes it is computed per class from the summed counts, then averaged over the
  classes that occur (mmseg's mDice / mIoU).

Labels are (B, H, W) integer tensors; pixels equal to ``ignore_index`` in the target are left
out of every count. Binary labels (``num_classes == 1``) score the foreground class 1 only.

A ratio whose denominator is 0 (e.g. precision when nothing is predicted) scores 1 when the
image has nothing wrong in it for that class (no false positive and no false negative) and 0
otherwise: an empty prediction on an empty target is perfect, an empty prediction on a pet is
not. Classes absent from both prediction and target are left out of the class average; an
image where every class is absent scores 1.
"""
from typing import Dict, Tuple

import torch

__all__ = ["predict_labels", "confusion_counts", "pixel_counts", "scores_from_counts", "per_image_scores",
           "per_image_from_counts", "dice_per_image", "iou_per_image", "precision_per_image", "recall_per_image",
           "accuracy_per_image", "micro_scores", "METRICS", "confusion_matrix", "confusion_matrices",
           "counts_from_confusion", "class_scores", "CLASS_METRICS"]

# The overlap metrics, in the order reports show them; accuracy is counted apart (it needs TN).
RATIO_METRICS = ("dice", "iou", "precision", "recall")
METRICS = RATIO_METRICS + ("accuracy",)


def predict_labels(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, C, H, W) logits → (B, H, W) labels: sigmoid > threshold for C = 1, argmax otherwise."""
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0].float()) > threshold).long()
    return logits.argmax(dim=1)


def confusion_matrices(pred: torch.Tensor, target: torch.Tensor, num_labels: int,
                       ignore_index: int = 255) -> torch.Tensor:
    """(B, K, K) int64 per-image pixel counts over labelled pixels: row = true label, column =
    predicted label. One bincount for all classes (a loop over 150 ADE20K classes at full
    resolution would take seconds per image); a target value that is neither a label nor
    ``ignore_index`` is left out (the data check reports it)."""
    k, b = int(num_labels), pred.shape[0]
    valid = (target != ignore_index) & (target >= 0) & (target < k)
    image = torch.arange(b, device=target.device).view(-1, *([1] * (target.dim() - 1))).expand_as(target)
    index = (image * k + target.long().clamp(0, k - 1)) * k + pred.long().clamp(0, k - 1)
    return torch.bincount(index[valid].flatten().cpu(), minlength=b * k * k).reshape(b, k, k)


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                     ignore_index: int = 255) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """True-positive, false-positive and false-negative pixel counts, each (B, K).

    K is 1 (the foreground) for binary labels and ``num_classes`` otherwise.
    """
    return counts_from_confusion(confusion_matrices(pred, target, 2 if num_classes == 1 else num_classes,
                                                    ignore_index), num_classes)


def counts_from_confusion(cm: torch.Tensor, num_classes: int = 1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tp, fp, fn) per image and class from (B, K, K) confusion matrices (the foreground column
    alone for a binary model), as float64."""
    cm = cm.double()
    tp = torch.diagonal(cm, dim1=-2, dim2=-1)
    fp, fn = cm.sum(-2) - tp, cm.sum(-1) - tp
    if num_classes == 1:
        return tp[:, 1:2], fp[:, 1:2], fn[:, 1:2]
    return tp, fp, fn


def pixel_counts(pred: torch.Tensor, target: torch.Tensor, ignore_index: int = 255
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Correctly labelled and labelled (non-ignored) pixels per image, each (B,)."""
    valid = target != ignore_index
    correct = (pred == target) & valid
    return correct.flatten(1).sum(1).double(), valid.flatten(1).sum(1).double()


def _ratio(num: torch.Tensor, denom: torch.Tensor, perfect: torch.Tensor) -> torch.Tensor:
    """num / denom, with 0/0 scored 1 where ``perfect`` and 0 elsewhere."""
    return torch.where(denom > 0, num / denom.clamp_min(1), perfect.to(num.dtype))


def scores_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Dice, IoU, precision and recall for each entry of same-shaped count tensors."""
    perfect = (fp == 0) & (fn == 0)
    return {"dice": _ratio(2 * tp, 2 * tp + fp + fn, perfect),
            "iou": _ratio(tp, tp + fp + fn, perfect),
            "precision": _ratio(tp, tp + fp, perfect),
            "recall": _ratio(tp, tp + fn, perfect)}


def _mean_over_present(score: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Average (..., K) class scores over classes present in prediction or target; 1 when none are."""
    count = present.sum(-1)
    total = (score * present).sum(-1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))


def per_image_scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                     ignore_index: int = 255) -> Dict[str, torch.Tensor]:
    """Every metric for each image, (B,) each: dice, iou, precision, recall (averaged over the
    classes present), and accuracy (share of labelled pixels labelled right; 1 when none are)."""
    return per_image_from_counts(*confusion_counts(pred, target, num_classes, ignore_index),
                                 *pixel_counts(pred, target, ignore_index))


def per_image_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, correct: torch.Tensor,
                          valid: torch.Tensor) -> Dict[str, torch.Tensor]:
    """:func:`per_image_scores` from counts already taken (``confusion_counts``, ``pixel_counts``),
    for callers that keep the counts too (micro metrics) and should not count twice."""
    present = (tp + fp + fn) > 0
    out = {k: _mean_over_present(v, present) for k, v in scores_from_counts(tp, fp, fn).items()}
    out["accuracy"] = _ratio(correct, valid, torch.ones_like(valid, dtype=torch.bool))
    return out


def dice_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                   ignore_index: int = 255) -> torch.Tensor:
    """2|P∩G| / (|P| + |G|) per image; an image with empty prediction and target scores 1."""
    return per_image_scores(pred, target, num_classes, ignore_index)["dice"]


def iou_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                  ignore_index: int = 255) -> torch.Tensor:
    """|P∩G| / |P∪G| per image; an image with empty prediction and target scores 1."""
    return per_image_scores(pred, target, num_classes, ignore_index)["iou"]


def precision_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                        ignore_index: int = 255) -> torch.Tensor:
    """|P∩G| / |P| per image: how much of what was predicted is right."""
    return per_image_scores(pred, target, num_classes, ignore_index)["precision"]


def recall_per_image(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 1,
                     ignore_index: int = 255) -> torch.Tensor:
    """|P∩G| / |G| per image: how much of the truth was found."""
    return per_image_scores(pred, target, num_classes, ignore_index)["recall"]


def accuracy_per_image(pred: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Share of labelled pixels whose label is right, per image (pixel accuracy)."""
    return per_image_scores(pred, target, 1, ignore_index)["accuracy"]


def micro_scores(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, correct: torch.Tensor,
                 valid: torch.Tensor) -> Dict[str, object]:
    """Dataset-level metrics from counts summed over images.

    ``tp``, ``fp``, ``fn`` are (K,) per-class sums (or (N, K) per-image counts, summed here),
    ``correct`` and ``valid`` scalars (or (N,)). Returns ``{metric: float}`` (the mean over
    classes that occur anywhere) plus ``{metric + "_per_class": [float] * K}``.
    """
    tp, fp, fn = (torch.as_tensor(x, dtype=torch.float64) for x in (tp, fp, fn))
    if tp.dim() == 2:
        tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    correct, valid = (torch.as_tensor(x, dtype=torch.float64).sum() for x in (correct, valid))
    present = (tp + fp + fn) > 0
    out: Dict[str, object] = {}
    for key, per_class in scores_from_counts(tp, fp, fn).items():
        out[key] = float(_mean_over_present(per_class, present))
        out[f"{key}_per_class"] = [float(v) for v in per_class]
    out["accuracy"] = float(correct / valid) if valid > 0 else 1.0
    return out


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_labels: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """(K, K) int64 pixel counts of a batch (``confusion_matrices`` summed over its images)."""
    return confusion_matrices(pred, target, num_labels, ignore_index).sum(0)


# The per-class columns, named as mmsegmentation names them.
CLASS_METRICS = ("IoU", "Dice", "Acc", "Precision")


def class_scores(confusion) -> Dict[str, object]:
    """mmsegmentation's per-class table from a summed confusion matrix.

    Per class: IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP + FN), Acc = TP / (TP + FN) (the
    share of the class's pixels found; mmseg's "Acc"), Precision = TP / (TP + FP); NaN where the
    denominator is 0 (the class is in neither prediction nor truth, or, for Acc, not in the truth).
    Means skip NaN, as mmseg's: mIoU, mDice, mAcc, mPrecision; aAcc is the share of all labelled
    pixels labelled right. Returns lists (one value per class) and floats; ``gt_pixels`` and
    ``pred_pixels`` are the class's pixel counts in the truth and in the prediction.
    """
    cm = torch.as_tensor(confusion, dtype=torch.float64)
    tp = cm.diag()
    gt, pred = cm.sum(1), cm.sum(0)

    def ratio(num, den):
        return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float("nan")))

    per_class = {"IoU": ratio(tp, gt + pred - tp), "Dice": ratio(2 * tp, gt + pred), "Acc": ratio(tp, gt),
                 "Precision": ratio(tp, pred)}
    out: Dict[str, object] = {}
    for key, values in per_class.items():
        defined = values[~torch.isnan(values)]
        out[f"m{key}"] = float(defined.mean()) if defined.numel() else float("nan")
        out[key] = [float(v) for v in values]
    total = cm.sum()
    out["aAcc"] = float(tp.sum() / total) if total > 0 else float("nan")
    out["gt_pixels"] = [int(v) for v in gt]
    out["pred_pixels"] = [int(v) for v in pred]
    return out
