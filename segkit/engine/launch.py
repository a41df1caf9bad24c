"""What every tool does before building anything: plugins, config, seed, logging, output dir."""
from __future__ import annotations

import logging
import os
import random
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from ..config import dump_config, load_config
from ..plugins import import_plugins
from .allocator import configure_allocator
from .distributed import init_distributed, is_main_process, launched_rank, launched_world_size
from .precision import resolve_device

__all__ = ["setup", "seed_everything", "setup_logging"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the stream of the moment the
    handler was made: a caller that swaps stderr (a test runner, a redirect) and closes the
    old one must not make every later log line fail."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(level: Optional[int] = None) -> None:
    """Log segkit's messages to stderr, keeping stdout for results (test.py's JSON line).

    Under torchrun only rank 0 logs at INFO; the other processes would repeat every line, so
    they report warnings and errors only.
    """
    if level is None:
        level = logging.INFO if launched_rank() == 0 else logging.WARNING
    log = logging.getLogger("segkit")
    if not any(getattr(h, "_segkit", False) for h in log.handlers):
        handler = _StderrHandler()
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
