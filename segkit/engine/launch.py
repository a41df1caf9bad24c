"""What every tool does before building anything: plugins, config, seed, logging, the output dir check."""
from __future__ import annotations

import os
import random
from typing import Sequence

import numpy as np
import torch

from ..config import load_config
from ..plugins import import_plugins
from ..utils.device import resolve_device
from ..utils.distributed import is_main_process, launched_world_size
from ..utils.files import nearest_existing
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
    """Raise PermissionError unless ``folder`` is, or could be created as, a folder we can write
    into. Creates and writes nothing: a run writes into OUTPUT_DIR only once its checks pass."""
    anchor = nearest_existing(folder)  # folder itself, or the nearest folder above that must let us create it
    if not os.path.isdir(anchor):
        problem = "it is a file" if anchor == os.path.abspath(folder) else f"'{anchor}' is a file"
    elif not os.access(anchor, os.W_OK | os.X_OK):
        problem = f"no permission to write in '{anchor}'"
    else:
        problem = None
    if problem:
        raise PermissionError(f"OUTPUT_DIR '{folder}' is not writable ({problem}); set OUTPUT_DIR to a folder you "
                              f"can write to")


def setup(config_path: str, opts: Sequence[str] = (), plugins: Sequence[str] = (), training: bool = True):
    """Load the config (after --plugin files), import CUSTOM_IMPORTS, seed; for training also
    check that OUTPUT_DIR can be written, writing nothing there: ``Trainer.train`` writes
    ``config.yaml`` (and everything else) once the run's checks have passed.

    Started by torchrun, it also joins the process group (see ``distributed.init_distributed``);
    only rank 0 looks at OUTPUT_DIR.
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
    return cfg
