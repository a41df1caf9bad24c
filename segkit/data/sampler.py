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

    ``set_epoch(epoch, start)`` picks the epoch and skips its first ``start`` items of this
    process's shard, which is how a run stopped mid-epoch resumes at the next batch.

    Under DDP (``world_size`` > 1) every process draws the same permutation and takes every
    ``world_size``-th item from position ``rank``, so batch k of all processes together holds
    exactly the items of batch k of one process loading ``world_size`` times the batch: the
    same config optimises the same way on 1 or N processes. ``drop_last`` (training) cuts
    the permutation to a multiple of ``world_size`` so no item is seen twice; otherwise the
    shards are padded from the start to equal length (as ``DistributedSampler`` does), and
    ``pad=False`` leaves them unequal (evaluation, where duplicates would skew metrics).
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, pad: bool = True):
        if not 0 <= int(rank) < int(world_size):
            raise ValueError(f"EpochSampler: rank {rank} is outside world_size {world_size}")
        self.size, self.shuffle, self.seed = int(size), bool(shuffle), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def order(self) -> list:
        """The whole epoch's order, the same in every process."""
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def shard(self) -> list:
        """This process's items of ``order()``: positions rank, rank + world_size, …"""
        order = self.order()
        if self.world_size == 1:
            return order
        if self.drop_last:
            order = order[: len(order) - len(order) % self.world_size]
        elif self.pad and order:
            extra = -len(order) % self.world_size
            order = order + (order * (extra // len(order) + 1))[:extra]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        for index in self.shard()[self.start:]:
            yield self.epoch, index

    def _shard_len(self) -> int:
        n, w = self.size, self.world_size
        if w == 1:
            return n
        if self.drop_last:
            return n // w
        if self.pad:
            return -(-n // w)
        return len(range(self.rank, n, w))

    def __len__(self) -> int:
        return max(0, self._shard_len() - self.start)
