"""Joining torchrun's process group and wrapping the model for DistributedDataParallel.

``init_distributed`` reads torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT) and joins the group (nccl on CUDA, gloo on CPU); the rank, barrier and reduction
primitives live in ``segkit.utils.distributed``.
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os

import torch
import torch.distributed as dist

from ..utils.distributed import get_local_rank, get_rank, get_world_size, is_distributed, launched_world_size

__all__ = ["init_distributed", "cleanup", "local_device", "wrap_model"]

logger = logging.getLogger(__name__)


def init_distributed(device: torch.device, timeout_s: float = 1800) -> bool:
    """Join the process group torchrun describes; returns whether this run is distributed.

    Safe to call more than once and without torchrun (then it does nothing). The backend
    follows the device: nccl for CUDA, gloo for CPU. On CUDA each process is pinned to the
    GPU of its LOCAL_RANK, so ``torch.device("cuda")`` means that GPU from here on.
    """
    if is_distributed():
        return True
    if launched_world_size() <= 1:
        return False
    if not dist.is_available():
        raise ValueError(f"WORLD_SIZE is {launched_world_size()} but this torch build has no torch.distributed")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                             f"start at most that many processes per machine (--nproc_per_node)")
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    atexit.register(cleanup)
    logger.info("joined process group: rank %d of %d, backend %s", get_rank(), get_world_size(), backend)
    return True


def cleanup() -> None:
    """Leave the process group (registered at exit by ``init_distributed``)."""
    if is_distributed():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """``cuda`` without an index means this process's own GPU under torchrun."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", get_local_rank())
    return device


def _to_sync_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Swap BatchNorm for SyncBatchNorm, keeping the model's list of frozen BN layers pointing
    at the layers that are in the model afterwards."""
    frozen = getattr(model, "_frozen_bn", None)
    names = {id(m): n for n, m in model.named_modules()}
    frozen_names = [names[id(m)] for m in frozen or () if id(m) in names]
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if frozen is not None:
        modules = dict(model.named_modules())
        model._frozen_bn = [modules[n] for n in frozen_names]
        model.train(model.training)
    return model


def wrap_model(model: torch.nn.Module, device: torch.device, sync_bn: bool = False) -> torch.nn.Module:
    """What the training forward runs through: ``model`` itself in one process, else a
    DistributedDataParallel around it (after converting BatchNorm to SyncBatchNorm when
    ``sync_bn``). ``model`` is changed in place, so callers keep using it for evaluation and
    checkpoints, whose state_dict keys stay those of a single-process run."""
    if not is_distributed():
        if sync_bn:
            logger.info("MODEL.SYNC_BN has no effect in a single process")
        return model
    if sync_bn:
        if device.type != "cuda":
            raise ValueError("MODEL.SYNC_BN is True but training runs on CPU: torch's SyncBatchNorm needs CUDA "
                             "devices; set MODEL.SYNC_BN False (each process then normalises with its own "
                             "batch's statistics)")
        converted = _to_sync_bn(model)
        if converted is not model:
            raise TypeError(f"MODEL.SYNC_BN: the model itself is a {type(model).__name__}; wrap it in a module")
    ids = [device.index if device.index is not None else get_local_rank()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
