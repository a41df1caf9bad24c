"""The data entry points: config → dataset → transformed dataset → DataLoader."""
from __future__ import annotations

import random
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..registry import DATASETS
from .transforms import build_transforms

__all__ = ["build_dataset", "build_dataloader", "TransformedDataset"]


def build_dataset(cfg, split: str) -> Dataset:
    """The raw dataset (uint8 HWC images, uint8 HW masks) of ``split`` named by DATA.DATASET."""
    return DATASETS.build(cfg.DATA.DATASET, root=cfg.DATA.ROOT, split=split,
                          ignore_index=cfg.DATA.IGNORE_INDEX, val_fraction=cfg.DATA.VAL_FRACTION,
                          seed=cfg.SEED)


class TransformedDataset(Dataset):
    """Applies an albumentations pipeline ending in ToTensorV2; yields what the model eats.

    Items: image float32 CHW tensor, mask int64 HW tensor (losses index with it), name str.
    """

    def __init__(self, dataset: Dataset, transform: Callable[..., Dict[str, Any]]):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        item = self.dataset[index]
        out = self.transform(image=item["image"], mask=item["mask"])
        image, mask = out["image"], out["mask"]
        if not torch.is_tensor(image):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask = mask if torch.is_tensor(mask) else torch.from_numpy(np.ascontiguousarray(mask))
        # ToTensorV2 returns a transposed view; making it contiguous here, in the worker, keeps
        # the main process's collate a plain memcpy.
        return {"image": image.float().contiguous(), "mask": mask.long(), "name": item["name"]}

    def reseed(self, seed: int) -> None:
        """Give this copy of the pipeline its own random stream (albumentations ignores global seeds)."""
        if hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)

    def __repr__(self) -> str:
        return f"TransformedDataset({self.dataset!r})"


def seed_worker(worker_id: int) -> None:
    """Seed python, numpy and the augmentation pipeline of one loader worker.

    torch gives each worker ``base_seed + worker_id`` where base_seed comes from the loader's
    seeded generator, so streams differ between workers and epochs yet repeat run to run.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)


def build_dataloader(cfg, split: str, shuffle: Optional[bool] = None) -> DataLoader:
    """A DataLoader over ``split``, augmented only for "train".

    Train batches have SOLVER.BATCH_SIZE and drop an incomplete last batch when there is
    more than one batch (a batch of one breaks BatchNorm); val/test use TEST.BATCH_SIZE and
    keep every image. ``shuffle`` defaults to True for train only.
    """
    train = split == "train"
    dataset = build_dataset(cfg, split)
    if len(dataset) == 0:
        hint = (f" (DATA.VAL_FRACTION={cfg.DATA.VAL_FRACTION} holds out nothing; skip validation "
                "or raise it)" if split == "val" else "")
        raise ValueError(f"build_dataloader: split '{split}' of DATA.DATASET '{cfg.DATA.DATASET.NAME}' at "
                         f"DATA.ROOT '{cfg.DATA.ROOT}' has no images{hint}")
    batch_size = int(cfg.SOLVER.BATCH_SIZE if train else cfg.TEST.BATCH_SIZE)
    workers = int(cfg.DATA.NUM_WORKERS)
    return DataLoader(
        TransformedDataset(dataset, build_transforms(cfg, train=train)),
        batch_size=batch_size,
        shuffle=train if shuffle is None else shuffle,
        drop_last=train and len(dataset) > batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(int(cfg.SEED)),
        worker_init_fn=seed_worker,
    )
