"""One evaluation path for the per-epoch validation hook and tools/test.py.

Loss and metrics are computed image by image and summarised as mean ± std over images, the
form the lab report uses (the standard deviation is the population one, ddof 0), and also at
dataset level ("micro": counts summed over every pixel, then one ratio; see segkit.metrics).

Scores can be taken at two resolutions:

* **network**: the logits against the mask resized to INPUT.SIZE (nearest neighbour); cheap,
  and what validation during training uses.
* **original**: the logits resized back bilinearly to each image's own size and compared with
  the untouched mask. This is the honest number: it is what a user of the model gets, and a
  resized mask loses thin structures. Its keys carry the ``orig_`` prefix when both are asked for.

With a ``SlidingWindow`` (TEST.MODE slide) the network never sees a resized image: each
original is scored window by window at its own pixels, and the scores are original-size ones.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

from ..losses import probabilities
from ..metrics import (CLASS_METRICS, METRICS, class_scores, confusion_matrices, counts_from_confusion, micro_scores,
                       per_image_from_counts, pixel_counts, predict_labels)
from ..utils.distributed import all_reduce_sum, gather_list
from .precision import forward_batch
from .tta import wrap_tta

__all__ = ["Evaluator", "summarize", "RESOLUTIONS", "with_original_size", "summary_keys"]

RESOLUTIONS = ("network", "original", "both")
_COUNT_KEYS = ("tp", "fp", "fn", "correct", "valid")


def summarize(values: Dict[str, List[float]]) -> Dict[str, float]:
    """{'dice': [...]} → {'dice_mean': .., 'dice_std': ..} plus 'n' (images)."""
    out: Dict[str, float] = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)
        out[f"{key}_mean"] = float(arr.mean()) if arr.size else float("nan")
        out[f"{key}_std"] = float(arr.std()) if arr.size else float("nan")
    out["n"] = len(next(iter(values.values()), []))
    return out


def summary_keys(prefix: str = "") -> List[str]:
    """The per-image metric names a summary holds for one resolution, loss first."""
    return [f"{prefix}{k}" for k in ("loss",) + METRICS]


class _WithOriginals(Dataset):
    """A TransformedDataset's items plus the untouched image and mask (numpy), for scoring and
    drawing at each image's own size."""

    def __init__(self, transformed):
        self.inner = transformed

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> dict:
        raw = self.inner.dataset[index]
        # A one-item list through the same class applies exactly the evaluation transform.
        item = type(self.inner)([raw], self.inner.transform, self.inner.seed)[0]
        item["orig_image"], item["orig_mask"] = raw["image"], raw["mask"]
        return item


class _CollateWithOriginals:
    """Collate the network-size part as the loader does (padding unequal keep-ratio images); keep
    the originals (each its own size) as lists."""

    def __init__(self, inner: Optional[Callable[[List[dict]], dict]] = None):
        self.inner = inner or default_collate

    def __call__(self, items: List[dict]) -> dict:
        batch = self.inner([{k: v for k, v in it.items() if not k.startswith("orig_")} for it in items])
        for key in ("orig_image", "orig_mask"):
            batch[key] = [it[key] for it in items]
        return batch


def with_original_size(loader: DataLoader) -> DataLoader:
    """The same loader (same sampler, batch size, workers, collate) whose batches also carry each
    image's original image and mask. ``loader.dataset`` must be a TransformedDataset."""
    dataset = loader.dataset
    if not hasattr(dataset, "transform") or not hasattr(dataset, "dataset"):
        raise TypeError(f"original-resolution evaluation needs a loader over a TransformedDataset; "
                        f"got {type(dataset).__name__}")
    inner = None if loader.collate_fn is default_collate else loader.collate_fn
    return DataLoader(_WithOriginals(dataset), batch_size=loader.batch_size, sampler=loader.sampler,
                      num_workers=loader.num_workers, collate_fn=_CollateWithOriginals(inner),
                      pin_memory=loader.pin_memory)


class Evaluator:
    """Runs a model over a loader and returns per-image metrics and their summary.

    ``records`` holds one dict per image afterwards (name, size, every metric, and the pixel
    counts micro metrics are summed from), gathered from every process when distributed;
    ``confusion`` the (K, K) confusion matrix of each resolution scored, summed over processes.
    ``tta_flip``/``tta_scales`` wrap the model in test-time augmentation (segkit.engine.tta).
    ``classes`` names the labels in the per-class table (default ``class_<i>``).
    """

    def __init__(self, loss_fn, num_classes: int = 1, ignore_index: int = 255, threshold: float = 0.5,
                 amp_dtype=None, channels_last: bool = False, keep_first: int = 4,
                 tta_flip: bool = False, tta_scales: Sequence[float] = (1.0,), resolution: str = "network",
                 slide=None, classes: Sequence[str] = ()):
        if resolution not in RESOLUTIONS:
            raise ValueError(f"TEST.RESOLUTION '{resolution}' is not one of {list(RESOLUTIONS)}")
        if slide is not None:
            resolution = "original"  # windows over the original pixels: there is no network-size score
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.keep_first = keep_first
        self.tta_flip, self.tta_scales = bool(tta_flip), [float(s) for s in tta_scales]
        self.resolution = resolution
        self.slide = slide
        self.num_labels = 2 if int(num_classes) == 1 else int(num_classes)
        self.classes = [str(c) for c in classes] if len(classes) == self.num_labels else \
            [f"class_{i}" for i in range(self.num_labels)]
        self.records: List[dict] = []
        self.confusion: Dict[str, torch.Tensor] = {}
        self.first_batch: Optional[Dict[str, torch.Tensor]] = None

    @property
    def prefixes(self) -> List[str]:
        """Key prefixes of the resolutions scored: "" is the primary one."""
        return {"network": [""], "original": [""], "both": ["", "orig_"]}[self.resolution]

    @torch.inference_mode()
    def run(self, model: torch.nn.Module, loader, device: torch.device,
            on_image: Optional[Callable[..., None]] = None) -> Dict[str, float]:
        """Evaluate and summarise. ``on_image(record, image, pred, prob)`` is called per image
        (uint8 HWC image, HW label array, (C, H, W) probabilities; at the original size when that
        is scored), e.g. to write predictions out."""
        was_training = model.training
        model.eval()
        if self.slide is not None:
            self.slide.check_model(model)
        net = wrap_tta(model, self.tta_flip, self.tta_scales)
        if self.resolution != "network":
            loader = with_original_size(loader)
        self.records, self.first_batch = [], None
        k = self.num_labels
        self.confusion = {p: torch.zeros((k, k), dtype=torch.int64) for p in self.prefixes}
        try:
            for batch in loader:
                self._run_batch(net, batch, device, on_image)
        finally:
            model.train(was_training)
        # Every process's records; a distributed sampler pads shards with repeats, dropped by name.
        self.records = gather_list(self.records, key=lambda r: r["name"])
        for p, cm in self.confusion.items():  # evaluation shards are not padded: summing counts no pixel twice
            self.confusion[p] = torch.tensor(all_reduce_sum(*cm.flatten().tolist()), dtype=torch.float64
                                             ).round().long().reshape(k, k)
        return self.summary()

    def summary(self) -> Dict[str, object]:
        """Mean ± std per image and micro values of every metric, for each resolution scored."""
        out: Dict[str, object] = {}
        for prefix in self.prefixes:
            keys = summary_keys(prefix)
            out.update(summarize({k: [r[k] for r in self.records] for k in keys}))
            counts = {k: [r[prefix + k] for r in self.records] for k in _COUNT_KEYS}
            if self.records:
                micro = micro_scores(*(torch.tensor(counts[k], dtype=torch.float64) for k in _COUNT_KEYS))
            else:
                micro = {k: float("nan") for k in METRICS}
            if self.num_classes == 1:  # the foreground class over the whole split
                out.update({f"{prefix}{key}_micro": micro[key] for key in METRICS})
            out.update(self.class_summary(prefix))
        out["classes"] = list(self.classes)
        out["n"] = len(self.records)
        out["resolution"] = self.resolution
        if self.slide is not None:
            out["mode"] = {"slide": {"crop": list(self.slide.crop), "stride": list(self.slide.stride),
                                     "scale": self.slide.scale}}
        if self.tta_flip or self.tta_scales != [1.0]:
            out["tta"] = {"flip": self.tta_flip, "scales": self.tta_scales}
        return out

    def class_summary(self, prefix: str = "") -> Dict[str, object]:
        """mmseg's names over the split from the confusion matrix: ``mIoU``, ``mDice``, ``mAcc``,
        ``mPrecision``, ``aAcc``; ``per_class`` (one row per named label: IoU, Dice, Acc,
        Precision, pixel counts) and ``confusion`` (rows = truth), keys with ``prefix``."""
        cm = self.confusion.get(prefix)
        if cm is None:
            cm = torch.zeros((self.num_labels, self.num_labels), dtype=torch.int64)
        scores = class_scores(cm)
        out: Dict[str, object] = {f"{prefix}{k}": scores[k] for k in ("mIoU", "mDice", "mAcc", "mPrecision", "aAcc")}
        columns = CLASS_METRICS + ("gt_pixels", "pred_pixels")
        out[f"{prefix}per_class"] = [{"class": name, **{c: scores[c][i] for c in columns}}
                                     for i, name in enumerate(self.classes)]
        out[f"{prefix}confusion"] = cm.tolist()
        return out

    def _scores(self, logits: torch.Tensor, masks: torch.Tensor, prefix: str, confusion: Optional[str] = None
                ) -> List[dict]:
        """One dict per image: loss, every metric and the raw counts, keys with ``prefix``; the
        pixels also go into the confusion matrix of resolution ``confusion`` (a key prefix)."""
        losses = self.loss_fn.per_image(logits, masks)
        pred = predict_labels(logits, self.threshold)
        matrices = confusion_matrices(pred, masks, self.num_labels, self.ignore_index)
        if confusion is not None and confusion in self.confusion:
            self.confusion[confusion] += matrices.sum(0)
        tp, fp, fn = counts_from_confusion(matrices, self.num_classes)
        correct, valid = pixel_counts(pred, masks, self.ignore_index)
        scores = per_image_from_counts(tp, fp, fn, correct, valid)
        rows = []
        for i in range(masks.shape[0]):
            row = {f"{prefix}loss": float(losses[i])}
            row.update({f"{prefix}{k}": float(v[i]) for k, v in scores.items()})
            row.update({f"{prefix}tp": tp[i].tolist(), f"{prefix}fp": fp[i].tolist(), f"{prefix}fn": fn[i].tolist(),
                        f"{prefix}correct": float(correct[i]), f"{prefix}valid": float(valid[i])})
            rows.append(row)
        return rows

    def _run_batch(self, model, batch, device, on_image) -> None:
        if self.slide is not None:
            return self._run_slide(model, batch, device, on_image)
        images, masks, logits = forward_batch(model, batch, device, self.amp_dtype, self.channels_last)
        network = self._scores(logits, masks, "", confusion="" if self.resolution != "original" else None)
        if self.resolution == "network":
            rows = network
        else:
            rows = []
            where = "" if self.resolution == "original" else "orig_"
            sizes = batch.get("size")
            for i, orig_mask in enumerate(batch["orig_mask"]):
                # a padded keep-ratio batch: this image's logits without the padding
                own = logits[i:i + 1] if sizes is None else logits[i:i + 1, :, :int(sizes[i][0]), :int(sizes[i][1])]
                up = self._resize(own, orig_mask.shape)
                target = torch.as_tensor(np.asarray(orig_mask), device=up.device).long()[None]
                original = self._scores(up, target, "", confusion=where)[0]
                # With both, the plain keys stay network-size (as before) and original ones get orig_.
                rows.append(original if self.resolution == "original"
                            else {**network[i], **{"orig_" + k: v for k, v in original.items()}})
                if on_image is not None:
                    self._emit(on_image, rows[-1], batch["name"][i], batch["orig_image"][i], up[0])
        for i, name in enumerate(batch["name"]):
            h, w = (batch["orig_mask"][i].shape if "orig_mask" in batch else masks.shape[-2:])
            rows[i].update({"name": name, "height": int(h), "width": int(w)})
            if on_image is not None and self.resolution == "network":
                self._emit(on_image, rows[i], name, None, logits[i], images[i])
        self.records.extend(rows)
        self._keep_first(images, masks, logits)

    def _keep_first(self, images, masks, logits) -> None:
        if self.first_batch is None and self.keep_first:
            k = self.keep_first
            self.first_batch = {"image": images[:k].float().cpu(), "mask": masks[:k].cpu(),
                                "prob": probabilities(logits[:k]).cpu()}

    def _run_slide(self, model, batch, device, on_image) -> None:
        """Each original image window by window at its own size; the first batch for TensorBoard
        is the network-size input with the slide logits resized to it."""
        small = []
        for i, (name, rgb, orig_mask) in enumerate(zip(batch["name"], batch["orig_image"], batch["orig_mask"])):
            logits = self.slide(model, np.asarray(rgb), device, self.amp_dtype, self.channels_last, name=name)
            target = torch.as_tensor(np.asarray(orig_mask), device=logits.device).long()[None]
            row = {**self._scores(logits, target, "", confusion="")[0], "name": name, "height": int(target.shape[-2]),
                   "width": int(target.shape[-1])}
            self.records.append(row)
            if on_image is not None:
                self._emit(on_image, row, name, rgb, logits[0])
            if self.first_batch is None and i < self.keep_first:
                small.append(self._resize(logits, batch["mask"].shape[-2:]).cpu())
        if small:
            k = len(small)
            self._keep_first(batch["image"][:k], batch["mask"][:k], torch.cat(small))

    @staticmethod
    def _resize(logits: torch.Tensor, size) -> torch.Tensor:
        if tuple(logits.shape[-2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)

    def _emit(self, on_image, record, name, image, logits, net_image=None) -> None:
        """Hand one image's picture and prediction to ``on_image``; the network-size picture is
        the normalised input, so the callback gets it as a tensor under ``net_image``."""
        prob = probabilities(logits[None])[0].cpu()
        pred = predict_labels(logits[None], self.threshold)[0].cpu().numpy().astype(np.uint8)
        on_image({**record, "name": name}, image, pred, prob, net_image=net_image)
