"""What every tool does before building anything: plugins, config, seed, logging, output dir."""
from __future__ import annotations

import os
import random
from typing import Sequence

import numpy as np
import torch

from ..config import dump_config, load_config
from ..plugins import import_plugins
from ..utils.device import resolve_device
from ..utils.distributed import is_main_process, launched_world_size
from ..utils.logging import setup_logging
from ..utils.process import configure_allocator
from .distributed import init_distributed

__all__ = ["setup", "seed_everything"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _check_writable(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, ".segkit_write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise PermissionError(f"OUTPUT_DIR '{folder}' is not writable ({e}); set OUTPUT_DIR to a folder you "
                              f"can write to") from e


def setup(config_path: str, opts: Sequence[str] = (), plugins: Sequence[str] = (), training: bool = True):
    """Load the config (after --plugin files), import CUSTOM_IMPORTS, seed; for training also
    create OUTPUT_DIR and write the merged config there as ``config.yaml``.

    Started by torchrun, it also joins the process group (see ``distributed.init_distributed``);
    only rank 0 touches OUTPUT_DIR.
    """
    setup_logging()
    import_plugins(plugins)
    cfg = load_config(config_path, opts)
    import_plugins(cfg.CUSTOM_IMPORTS)
    configure_allocator(cfg)
    seed_everything(cfg.SEED, cfg.DETERMINISTIC)
    if launched_world_size() > 1:  # started by torchrun
        init_distributed(resolve_device(cfg.DEVICE))
    if training and is_main_process():
        _check_writable(cfg.OUTPUT_DIR)
        dump_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
    return cfg
