"""Process-group primitives that are no-ops in a single process, so callers need no branches.

``torchrun --nproc_per_node N tools/train.py CONFIG`` starts N copies of the same command
with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set; ``segkit.engine.distributed``
joins the process group. Until then (and without torchrun) every helper here behaves as in one
process: rank 0 of 1, reductions return their input.
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "get_rank", "get_world_size", "get_local_rank", "is_main_process",
           "launched_rank", "launched_world_size", "barrier", "all_reduce_sum", "all_reduce_max",
           "broadcast_buffers", "gather_list", "per_process_batch"]


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
