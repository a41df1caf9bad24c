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
