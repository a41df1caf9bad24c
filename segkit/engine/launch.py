"""What every tool does before building anything: plugins, config, seed, logging, output dir."""
from __future__ import annotations

import logging
import os
import random
import sys
from typing import Sequence

import numpy as np
import torch

from ..config import dump_config, load_config
from ..plugins import import_plugins

__all__ = ["setup", "seed_everything", "setup_logging"]


def setup_logging(level: int = logging.INFO) -> None:
    """Log segkit's messages to stderr, keeping stdout for results (test.py's JSON line)."""
    log = logging.getLogger("segkit")
    if not any(getattr(h, "_segkit", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        handler._segkit = True
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


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
    create OUTPUT_DIR and write the merged config there as ``config.yaml``."""
    setup_logging()
    import_plugins(plugins)
    cfg = load_config(config_path, opts)
    import_plugins(cfg.CUSTOM_IMPORTS)
    seed_everything(cfg.SEED, cfg.DETERMINISTIC)
    if training:
        _check_writable(cfg.OUTPUT_DIR)
        dump_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
    return cfg
