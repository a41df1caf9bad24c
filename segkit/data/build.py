"""The data entry points: config → dataset → transformed dataset → DataLoader."""
from __future__ import annotations

import inspect
import random
from typing import Any, Callable, Dict, Iterable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..registry import DATASETS
from ..utils.distributed import get_rank, get_world_size, per_process_batch
from .cache import ResizeCache
from .geometry import PadCollate
from .problems import item_key
from .sampler import EpochSampler, sample_seed
from .transforms import build_transforms, seed_transforms

__all__ = ["build_dataset", "build_dataloader", "build_cache", "TransformedDataset"]



def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` names keyword ``name``: user datasets need not know strict or exclude.

    A bare ``**kwargs`` does not count: such a dataset might swallow ``exclude`` and keep
    the bad samples, so it is filtered here instead.
    """
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def build_dataset(cfg, split: str, strict: bool = True, exclude: Iterable[str] = ()) -> Dataset:
    """The raw dataset (uint8 HWC images, uint8 HW masks) of ``split`` named by DATA.DATASET.

    ``strict=False`` asks the dataset to build despite missing files (for the data check);
    ``exclude`` names samples to leave out (what ``preflight`` found bad). Both reach the
    dataset only if its class takes them. A dataset without ``exclude`` is filtered here by
    index, using the ``split#index`` ids the check gives such datasets.
    """
    cls = DATASETS.get(cfg.DATA.DATASET.NAME)
    exclude = set(exclude)
    extra: Dict[str, Any] = {}
    if _accepts(cls, "strict"):
        extra["strict"] = strict
    if exclude and _accepts(cls, "exclude"):
        extra["exclude"] = sorted(exclude)
    dataset = DATASETS.build(cfg.DATA.DATASET, root=cfg.DATA.ROOT, split=split,
                             ignore_index=cfg.DATA.IGNORE_INDEX, val_fraction=cfg.DATA.VAL_FRACTION,
                             seed=cfg.SEED, **extra)
    if exclude and "exclude" not in extra:
        keep = [i for i in range(len(dataset)) if item_key(split, i) not in exclude]
        if len(keep) < len(dataset):
            dataset = torch.utils.data.Subset(dataset, keep)
    return dataset


class TransformedDataset(Dataset):
    """Applies an albumentations pipeline ending in ToTensorV2; yields what the model eats.

    Items: image float32 CHW tensor, mask int64 HW tensor (losses index with it), name str.
    A key ``(epoch, index)`` (from :class:`EpochSampler`) seeds the augmentation from
    (``seed``, epoch, index), so a sample is augmented the same way whichever worker loads it
    and whether or not the run was resumed; a plain index uses the pipeline's own stream.
    With a :class:`ResizeCache`, raw items come already decoded and resized from it (the
    pipeline's first op, the Resize, then has nothing to do); ``dataset`` stays the raw one.
    """

    def __init__(self, dataset: Dataset, transform: Callable[..., Dict[str, Any]], seed: int = 0,
                 cache: Optional[ResizeCache] = None):
        self.dataset, self.transform, self.seed, self.cache = dataset, transform, int(seed), cache

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> Dict[str, Any]:
        if isinstance(key, tuple):
            epoch, index = key
            self.reseed(sample_seed(self.seed, epoch, index))
        else:
            index = key
        item = self.cache.get(self.dataset, index) if self.cache is not None else self.dataset[index]
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
        seed_transforms(self.transform, seed)

    def __repr__(self) -> str:
        return f"TransformedDataset({self.dataset!r})"


def seed_worker(worker_id: int) -> None:
    """Seed python, numpy and the augmentation pipeline of one loader worker.

    torch gives each worker ``base_seed + worker_id`` where base_seed comes from the loader's
    seeded generator, so streams differ between workers and epochs yet repeat run to run.

    OpenCV's thread count is deliberately left alone here: calling ``cv2.setNumThreads`` in a
    forked worker hangs forever (pthread_cond_destroy on a condition variable copied from
    the parent) whenever the parent process had already started OpenCV's thread pool, e.g.
    by resizing in a NUM_WORKERS=0 loader earlier. (A child forked from such a parent runs
    OpenCV on one thread anyway; otherwise it may start a small pool of its own.)
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)


def build_cache(cfg) -> Optional[ResizeCache]:
    """The decode-and-resize cache DATA.CACHE asks for (see segkit.data.cache); None for "none"."""
    if cfg.DATA.CACHE in ("none", None):
        return None
    if cfg.INPUT.GEOMETRY == "keep_ratio":
        return ResizeCache(scale=tuple(cfg.INPUT.SCALE), mode=cfg.DATA.CACHE, cache_dir=cfg.DATA.CACHE_DIR,
                           draft=cfg.DATA.JPEG_DRAFT)
    return ResizeCache(int(cfg.INPUT.SIZE), mode=cfg.DATA.CACHE, cache_dir=cfg.DATA.CACHE_DIR,
                       draft=cfg.DATA.JPEG_DRAFT)


def build_dataloader(cfg, split: str, shuffle: Optional[bool] = None, exclude: Iterable[str] = ()) -> DataLoader:
    """A DataLoader over ``split``, augmented only for "train".

    Train batches have SOLVER.BATCH_SIZE and drop an incomplete last batch when there is
    more than one batch (a batch of one breaks BatchNorm); val/test use TEST.BATCH_SIZE and
    keep every image. ``shuffle`` defaults to True for train only. ``exclude`` names samples
    to leave out (``preflight``'s result).
    """
    train = split == "train"
    dataset = build_dataset(cfg, split, exclude=exclude)
    if len(dataset) == 0:
        hint = (f" (DATA.VAL_FRACTION={cfg.DATA.VAL_FRACTION} holds out nothing; skip validation "
                "or raise it)" if split == "val" else "")
        raise ValueError(f"build_dataloader: split '{split}' of DATA.DATASET '{cfg.DATA.DATASET.NAME}' at "
                         f"DATA.ROOT '{cfg.DATA.ROOT}' has no images{hint}")
    batch_size = int(cfg.SOLVER.BATCH_SIZE if train else cfg.TEST.BATCH_SIZE)
    workers = int(cfg.DATA.NUM_WORKERS)
    shuffle = train if shuffle is None else shuffle
    # Under DDP, SOLVER.BATCH_SIZE is the global batch (each process loads its share) and
    # every split is sharded; evaluation shards are not padded, so no image counts twice.

    rank, world = get_rank(), get_world_size()
    drop_last = train and len(dataset) > batch_size
    sampler = None
    if train or world > 1:
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=cfg.SEED, rank=rank, world_size=world,
                               drop_last=drop_last, pad=train)
    if train:
        batch_size = per_process_batch(batch_size)
    # Keep-ratio evaluation batches hold images of unequal size: padded, with each one's own size.
    ragged = not train and cfg.INPUT.GEOMETRY == "keep_ratio"
    return DataLoader(
        TransformedDataset(dataset, build_transforms(cfg, train=train), seed=cfg.SEED, cache=build_cache(cfg)),
        batch_size=batch_size,
        # The trainer calls sampler.set_epoch(epoch) so order and augmentation depend on the epoch.
        sampler=sampler,
        shuffle=None if sampler is not None else shuffle,
        drop_last=drop_last,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(int(cfg.SEED)),
        worker_init_fn=seed_worker,
        collate_fn=PadCollate(cfg.DATA.IGNORE_INDEX) if ragged else None,
    )
