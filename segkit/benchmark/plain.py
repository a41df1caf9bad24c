"""The benchmark's reference point: the training loop a student writes first, in plain PyTorch.

segkit's numbers only mean something next to this. ``PlainLoop`` reads segkit's split the
plain way (``segkit.experiments.plain_loop.plain_dataset``: PIL decodes and resizes every
JPEG per item, no augmentation), trains the model it is given in fp32 and NCHW with BCE +
Adam, uses a DataLoader with the same workers, and evaluates under ``torch.no_grad``. It also
carries a peer library's model (``peers``), optionally with the two lines a user adds to make
that fast (autocast + channels_last).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..engine.precision import autocast_context
from ..experiments.plain_loop import plain_dataset

__all__ = ["PlainLoop"]


class PlainLoop:
    """The baseline: fp32, NCHW, BCE + Adam, PIL loading in a DataLoader with the same workers.

    ``dtype``/``channels_last`` give the same hand-written loop with autocast and NHWC, the
    two lines a user adds to make a peer library's model fast (``--peer``).
    """

    def __init__(self, cfg, model: torch.nn.Module, device: torch.device, dtype=None, channels_last: bool = False):
        self.cfg, self.device, self.model = cfg, device, model.to(device)
        self.dtype, self.channels_last = dtype, channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.SOLVER.BASE_LR)
        workers = int(cfg.DATA.NUM_WORKERS)
        common = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        # segkit's split read the plain way (PIL decode + resize per item), without augmentation
        self.train_loader = DataLoader(plain_dataset(cfg, "train"), batch_size=cfg.SOLVER.BATCH_SIZE,
                                       shuffle=True, drop_last=True, **common)
        self.test_loader = DataLoader(plain_dataset(cfg, "test"), batch_size=cfg.TEST.BATCH_SIZE, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits in fp32 for an image batch already on the device."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.device, self.dtype):
            return self.model(x).float()

    def step(self, batch) -> None:
        """One optimizer step on an (image, mask) batch."""
        x, y = (t.to(self.device, non_blocking=True) for t in batch)
        loss = F.binary_cross_entropy_with_logits(self.forward(x), (y == 1).float()[:, None])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def train_epoch(self, epoch: int = 0) -> None:
        """One pass over the training loader (``epoch`` is unused: the loader shuffles itself)."""
        self.model.train()
        for batch in self.train_loader:
            self.step(batch)

    @torch.no_grad()
    def infer(self, batch) -> torch.Tensor:
        """Thresholded predictions for an (image, mask) batch."""
        return torch.sigmoid(self.forward(batch[0].to(self.device, non_blocking=True))) > 0.5
