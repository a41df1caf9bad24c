"""The lab recipe as a student writes it: a hand-written PyTorch loop, segkit's reference point.

segkit has to train at least as well as this. It is deliberately plain: PIL decodes and
resizes every image every epoch, the lab report's augmentation is written out with
``torchvision.transforms.functional`` and one ``random.random()`` draw per step (as in the
report's code), fp32 and NCHW, BCE, Adam, a per-epoch cosine schedule, ``drop_last=True``,
and the last epoch's weights. Only the split and the initial weights come from segkit
(same SEED, same images held out, same model and init), so a paired comparison isolates
what segkit does differently.

``PlainOptions`` moves single factors over to segkit's side for the ablation
(``segkit.experiments.ablation``): bf16 autocast, one shared draw for every augmentation
step (what an augmentation pipeline seeded once per sample does when it hands every step
the same seed), mask borders marked ignored, JPEG draft decoding, and segkit's configured
albumentations steps in place of the torchvision ones.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import random
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

__all__ = ["PlainOptions", "LabAugment", "ConfigAugment", "PlainPetDataset", "plain_dataset", "train_plain_loop"]

logger = logging.getLogger("segkit")

IGNORE = 255


@dataclasses.dataclass
class PlainOptions:
    """What the plain loop does differently from segkit, one switch per ablation factor."""

    augment: bool = True
    bf16: bool = False               # autocast the forward to bfloat16 and use channels_last
    shared_draw: bool = False        # one random number decides every augmentation step
    ignore_border: bool = False      # pixels that rotation/affine invent are ignored, not background
    jpeg_draft: bool = False         # let libjpeg decode at a reduced scale before the resize
    config_augment: bool = False     # segkit's configured albumentations steps instead of LabAugment


class LabAugment:
    """The lab report's paired augmentation (section 2.2), written as its code writes it.

    Each step fires on its own ``random.random()`` draw; ``shared_draw`` reuses one draw for
    all of them, so the steps fire together in nested sets instead of independently.
    """

    def __init__(self, shared_draw: bool = False, mask_fill: int = 0):
        self.shared_draw, self.mask_fill = shared_draw, mask_fill
        self.jitter = T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1)

    def __call__(self, image: Image.Image, mask: Image.Image):
        u = random.random()
        draw = (lambda: u) if self.shared_draw else random.random
        if draw() > 0.5:
            image, mask = TF.hflip(image), TF.hflip(mask)
        if draw() > 0.8:
            image, mask = TF.vflip(image), TF.vflip(mask)
        if draw() > 0.7:
            angle = random.uniform(-15, 15)
            image, mask = TF.rotate(image, angle), TF.rotate(mask, angle, fill=self.mask_fill)
        if draw() > 0.6:
            image = self.jitter(image)
        if draw() > 0.8:
            image = TF.gaussian_blur(image, kernel_size=3, sigma=0.5)
        if draw() > 0.75:
            args = dict(angle=0, translate=(5, 5), scale=1.05, shear=2)
            image, mask = TF.affine(image, **args), TF.affine(mask, **args, fill=self.mask_fill)
        return image, mask


class ConfigAugment:
    """segkit's augmentation (the config's INPUT.TRAIN_TRANSFORMS, built by albumentations) in
    LabAugment's place: moves the library, its parameter distributions and interpolation to
    segkit's side and nothing else. Each item is seeded from the loop's own ``random`` stream
    (one seed per step, as segkit does), and borders are filled like LabAugment's.
    """

    def __init__(self, nodes, mask_fill: int = 0):
        import albumentations as A

        from ..data.transforms import build_transform

        self.compose = A.Compose([build_transform(n, mask_fill, where=f"INPUT.TRAIN_TRANSFORMS[{i}]")
                                  for i, n in enumerate(nodes)])

    def __call__(self, image: Image.Image, mask: Image.Image):
        from ..data.transforms import seed_transforms

        seed_transforms(self.compose, random.getrandbits(32))
        out = self.compose(image=np.asarray(image), mask=np.asarray(mask))
        return Image.fromarray(out["image"]), Image.fromarray(out["mask"])


class PlainPetDataset(Dataset):
    """PIL-decode the full image and resize it, every item: bilinear (PIL filters when it
    shrinks) for the image, nearest for the trimap; pet = trimap values 1 and 3."""

    def __init__(self, image_paths: List[str], trimap_paths: List[str], size: int, mean, std,
                 augment: Optional[LabAugment] = None, jpeg_draft: bool = False):
        self.image_paths, self.trimap_paths, self.size = list(image_paths), list(trimap_paths), int(size)
        self.mean, self.std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        self.augment, self.jpeg_draft = augment, jpeg_draft

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, i: int):
        with Image.open(self.image_paths[i]) as img:
            if self.jpeg_draft and img.format == "JPEG":
                img.draft("RGB", (self.size, self.size))
            img = img.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        trimap = np.asarray(Image.open(self.trimap_paths[i]).resize((self.size, self.size), Image.NEAREST))
        mask = Image.fromarray((trimap != 2).astype(np.uint8))
        if self.augment is not None:
            img, mask = self.augment(img, mask)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std, torch.from_numpy(np.asarray(mask, dtype=np.int64))


def plain_dataset(cfg, split: str, augment: Optional[LabAugment] = None, jpeg_draft: bool = False) -> PlainPetDataset:
    """segkit's own split of ``split`` (same SEED, same held-out images), read the plain way."""
    from ..data import build_dataset

    ds = build_dataset(cfg, split)
    if not all(hasattr(ds, a) for a in ("names", "image_path", "trimap_path")):
        raise ValueError(f"the plain loop reads Oxford-layout datasets (oxford_pet or synthetic); "
                         f"DATA.DATASET.NAME is '{cfg.DATA.DATASET.NAME}'")
    if cfg.MODEL.NUM_CLASSES != 1:
        raise ValueError(f"the plain loop trains binary models; MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}, "
                         "expected 1")
    return PlainPetDataset([ds.image_path(n) for n in ds.names], [ds.trimap_path(n) for n in ds.names],
                           cfg.INPUT.SIZE, cfg.INPUT.MEAN, cfg.INPUT.STD, augment=augment, jpeg_draft=jpeg_draft)


def _forward(model, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    if not bf16:
        return model(x)
    from ..engine.precision import autocast_context

    with autocast_context(x.device, torch.bfloat16):
        return model(x.contiguous(memory_format=torch.channels_last)).float()


def _bce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the labelled pixels (all of them unless borders are ignored)."""
    valid = (mask != IGNORE).float()
    target = (mask == 1).float()
    loss = F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp_min(1.0)


@torch.no_grad()
def evaluate_dice(model, loader, bf16: bool = False) -> List[float]:
    """Per-image Dice at the network's size, the metric segkit's Evaluator reports."""
    from ..metrics import dice_per_image, predict_labels

    model.eval()
    scores = []
    for x, y in loader:
        scores += dice_per_image(predict_labels(_forward(model, x, bf16).float()), y).tolist()
    return scores


def train_plain_loop(cfg, options: PlainOptions = PlainOptions(), eval_splits=("test",)) -> Dict:
    """Train cfg's model with the plain loop; per-image test Dice of the last and the best-on-val epoch.

    Uses cfg's SEED, INPUT.SIZE/MEAN/STD, SOLVER.EPOCHS/BATCH_SIZE/BASE_LR, DATA.NUM_WORKERS,
    and builds cfg's model after seeding exactly as segkit's Trainer does.
    """
    from ..engine.launch import seed_everything
    from ..models import build_model

    seed_everything(cfg.SEED)
    model = build_model(cfg)
    if options.bf16:
        model.to(memory_format=torch.channels_last)
    mask_fill = IGNORE if options.ignore_border else 0
    augment = None
    if options.augment:
        augment = (ConfigAugment(cfg.INPUT.TRAIN_TRANSFORMS, mask_fill) if options.config_augment
                   else LabAugment(options.shared_draw, mask_fill))
    workers = int(cfg.DATA.NUM_WORKERS)
    loader_args = dict(num_workers=workers, persistent_workers=workers > 0)
    train = DataLoader(plain_dataset(cfg, "train", augment, options.jpeg_draft), batch_size=cfg.SOLVER.BATCH_SIZE,
                       shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(int(cfg.SEED)),
                       **loader_args)
    evals = {s: DataLoader(plain_dataset(cfg, s, None, options.jpeg_draft), batch_size=cfg.TEST.BATCH_SIZE,
                           **loader_args) for s in ("val", *eval_splits)}
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.SOLVER.BASE_LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.SOLVER.EPOCHS)
    best_val, best_state, best_epoch, start = -1.0, None, -1, time.perf_counter()
    train_seconds = 0.0
    for epoch in range(cfg.SOLVER.EPOCHS):
        model.train()
        t0 = time.perf_counter()
        for x, y in train:
            loss = _bce(_forward(model, x, options.bf16), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        train_seconds += time.perf_counter() - t0
        val = float(np.mean(evaluate_dice(model, evals["val"], options.bf16)))
        logger.info("plain loop epoch %d/%d: loss %.4f, val dice %.4f", epoch + 1, cfg.SOLVER.EPOCHS,
                    loss.item(), val)
        if val > best_val:
            best_val, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
    result = {"train_s": train_seconds, "wall_s": time.perf_counter() - start, "best_val_dice": best_val}
    def test_dice() -> Dict[str, float]:
        return {split: float(np.mean(evaluate_dice(model, evals[split], options.bf16))) for split in eval_splits}

    scores = {"last": test_dice()}
    if best_epoch == cfg.SOLVER.EPOCHS - 1:  # the best epoch is the last one: nothing more to score
        scores["best"] = scores["last"]
    else:
        model.load_state_dict(best_state)
        scores["best"] = test_dice()
    result.update({f"{split}_dice_{tag}": d for tag, by_split in scores.items() for split, d in by_split.items()})
    return result
