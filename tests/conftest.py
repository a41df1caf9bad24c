"""Shared fixtures: a tiny synthetic Oxford-layout dataset and overrides for a tiny, fast run."""
import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The decode cache of every run in the tests (and of the tools they start) goes to a fresh
# folder, never the user's ~/.cache/segkit.
os.environ["SEGKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="segkit-test-cache-")
PET_ROOT = os.environ.get("SEGKIT_PET_ROOT")
needs_pet_sample = pytest.mark.skipif(not PET_ROOT, reason="SEGKIT_PET_ROOT is not set (CI sets it)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long end-to-end test; CI runs it too")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """A 24 + 8 image synthetic dataset, generated once per test session."""
    from segkit.data.synthetic import generate_synthetic_pets

    root = tmp_path_factory.mktemp("synthetic_pets")
    generate_synthetic_pets(str(root), num_trainval=24, num_test=8, image_size=72, seed=0)
    return str(root)


def untrained_checkpoint(folder, overrides, config_path=None):
    """An untrained model of ``load_config(config_path, overrides)`` saved as ``folder/model.pth`` (seed 0)
    and its merged config as ``folder/tiny.yaml``: (config file, checkpoint, cfg). Shapes, file
    handling and error paths need no training."""
    import torch

    from segkit.config import load_config
    from segkit.engine.checkpoint import atomic_save, make_checkpoint
    from segkit.models import build_model

    cfg = load_config(config_path, overrides)
    torch.manual_seed(0)
    ckpt = Path(folder) / "model.pth"
    atomic_save(make_checkpoint(build_model(cfg), cfg), str(ckpt))
    config = Path(folder) / "tiny.yaml"
    config.write_text(cfg.dump())
    return config, ckpt, cfg


def tiny_overrides(root: str, output_dir: str, dataset: str = "oxford_pet", epochs: int = 2) -> list:
    """KEY VALUE overrides for a tiny UNet at 32 px with no workers: seconds per epoch."""
    return ["DATA.ROOT", root, "DATA.DATASET.NAME", dataset, "DATA.NUM_WORKERS", "0",
            "MODEL.BACKBONE.NAME", "unet", "MODEL.BACKBONE.CHANNELS", "[4, 8, 16, 32, 64]",
            "INPUT.SIZE", "32", "SOLVER.EPOCHS", str(epochs), "SOLVER.BATCH_SIZE", "4",
            "SOLVER.BASE_LR", "1e-3", "OUTPUT_DIR", output_dir]


@pytest.fixture(autouse=True)
def _restore_segkit_logger():
    """In-process CLI calls configure the "segkit" logger (own handler, no propagation); put it
    back after each test so later tests' caplog still sees segkit's records."""
    import logging

    log = logging.getLogger("segkit")
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved


@pytest.fixture(autouse=True)
def _restore_determinism():
    """A DETERMINISTIC True run switches torch's deterministic algorithms on for the whole process;
    switch them back so later tests run as they would alone."""
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


class CommandResult:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err

    def json(self) -> dict:
        """The result every command with one prints as its last stdout line."""
        import json

        return json.loads(self.stdout.strip().splitlines()[-1])


@pytest.fixture
def segkit_cli(capsys):
    """``segkit ARGS…`` in this process, as the console script runs it: returns the exit status
    (a usage error's SystemExit included) and what the command printed. ``check`` asserts 0."""
    from segkit.commands import main

    def run(*argv, check: bool = True) -> CommandResult:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors and --help
            code = e.code if isinstance(e.code, int) else 2
        out, err = capsys.readouterr()
        if check and code != 0:
            raise AssertionError(f"segkit {' '.join(map(str, argv))} exited {code}\nstdout:\n{out}\nstderr:\n{err}")
        return CommandResult(code, out, err)

    return run


def run_subprocess(*args: str, check: bool = True, timeout: int = 600):
    """``python ARGS…`` from the repository root, as a user starts a tool; for the one smoke test
    per command that proves the entry points work outside the test process."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
