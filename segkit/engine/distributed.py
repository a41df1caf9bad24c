"""Process-group helpers that are no-ops in a single process, so callers need no branches."""
from __future__ import annotations

from typing import Any, List

import torch.distributed as dist

__all__ = ["is_distributed", "get_rank", "get_world_size", "is_main_process", "gather_list"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def gather_list(items: List[Any]) -> List[Any]:
    """Concatenate every rank's ``items`` (picklable) in rank order; ``items`` itself alone."""
    if not is_distributed():
        return list(items)
    parts: List[Any] = [None] * get_world_size()
    dist.all_gather_object(parts, list(items))
    return [x for part in parts for x in part]
