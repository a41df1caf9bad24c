"""Process-group helpers that are no-ops in a single process, so callers need no branches.

``torchrun --nproc_per_node N tools/train.py CONFIG`` starts N copies of the same command
with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set. ``init_distributed``
reads them and joins the process group (nccl on CUDA, gloo on CPU); without them every
helper here behaves as in one process: rank 0 of 1, reductions return their input.
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os
from typing import Any, Callable, List, Optional

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "get_rank", "get_world_size", "get_local_rank", "is_main_process",
           "launched_rank", "launched_world_size", "init_distributed", "cleanup", "barrier",
           "all_reduce_sum", "all_reduce_max", "broadcast_buffers", "gather_list", "local_device",
           "per_process_batch", "wrap_model"]

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK): which GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", 0)) if is_distributed() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def launched_rank() -> int:
    """The rank torchrun gave this process, readable before the group is joined (for logging)."""
    return int(os.environ.get("RANK", 0))


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


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


def per_process_batch(global_batch: int, key: str = "SOLVER.BATCH_SIZE") -> int:
    """The share of a global batch each process loads; the global batch must split evenly."""
    world = get_world_size()
    if int(global_batch) % world:
        raise ValueError(f"{key} {global_batch} is the global batch, split across {world} processes; "
                         f"it must be a multiple of {world} (e.g. {max(1, int(global_batch) // world) * world})")
    return int(global_batch) // world


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _reduce(values: List[float], op) -> List[float]:
    if not is_distributed():
        return [float(v) for v in values]
    # gloo reduces CPU tensors; nccl needs them on this process's GPU.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=op)
    return t.cpu().tolist()


def all_reduce_sum(*values: float) -> List[float]:
    """Sums of each value over all processes (the values themselves in one process)."""
    return _reduce(list(values), dist.ReduceOp.SUM if dist.is_available() else None)


def all_reduce_max(*values: float) -> List[float]:
    return _reduce(list(values), dist.ReduceOp.MAX if dist.is_available() else None)


def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every process.

    Each process updates running statistics from its own shard after DDP's per-forward
    broadcast, so they drift apart within a step; syncing before evaluation makes every rank
    evaluate exactly the model rank 0 checkpoints.
    """
    if not is_distributed():
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=src)


def gather_list(items: List[Any], key: Optional[Callable[[Any], Any]] = None) -> List[Any]:
    """Concatenate every rank's ``items`` (picklable) in rank order; ``items`` itself alone.

    ``key`` drops later items whose key was already seen, for samplers that pad shards with
    repeated samples (``key=lambda r: r["name"]`` for per-image records).
    """
    if is_distributed():
        parts: List[Any] = [None] * get_world_size()
        dist.all_gather_object(parts, list(items))
        items = [x for part in parts for x in part]
    else:
        items = list(items)
    if key is None:
        return items
    seen, unique = set(), []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            unique.append(item)
    return unique


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
