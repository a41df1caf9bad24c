"""Training order and augmentation that depend only on (SEED, epoch, index).

A resumed run must see the same batches, augmented the same way, as an uninterrupted one.
Random streams that live in loader workers cannot be saved, so nothing is drawn from them:
the sampler shuffles with a generator seeded by ``seed + epoch`` and hands the dataset
``(epoch, index)`` keys, and the dataset seeds each sample's augmentation from that key.
Worker count and persistence then change nothing, and resuming needs only the epoch and the
number of batches already done in it.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler", "sample_seed"]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one sample in one epoch; distinct keys give unrelated streams."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 1_000_033 + int(index))
    return int(torch.randint(0, 2**31 - 1, (1,), generator=g))


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` for ``size`` items, shuffled per epoch when ``shuffle``.

    ``set_epoch(epoch, start)`` picks the epoch and skips its first ``start`` items, which is
    how a run stopped mid-epoch resumes at the next batch.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0):
        self.size, self.shuffle, self.seed = int(size), bool(shuffle), int(seed)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def order(self) -> list:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        for index in self.order()[self.start:]:
            yield self.epoch, index

    def __len__(self) -> int:
        return max(0, self.size - self.start)
