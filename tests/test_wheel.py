"""A user's first hour without the repository: the built wheel, installed in a fresh virtual
environment, trains and tests the quickstart by name from an empty folder."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import segkit

from .conftest import REPO

# What a wheel is built from: the working tree without run outputs, builds or caches.
NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", "site", "work_dirs", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".import_linter_cache", ".coverage", ".benchmarks")
# The quickstart, shrunk to seconds: the same command a user types, with smaller data and images.
TINY = ["SOLVER.EPOCHS", "1", "DATA.DATASET.NUM_TRAINVAL", "16", "DATA.DATASET.NUM_TEST", "8",
        "DATA.DATASET.IMAGE_SIZE", "64", "INPUT.SIZE", "32", "DATA.NUM_WORKERS", "0"]


def _run(args, cwd, env=None, timeout=600):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def build_wheel(out: Path) -> Path:
    """The wheel of a copy of this checkout (a stale build/ folder here could add deleted files)."""
    src = out / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    # No build isolation: the build uses the installed setuptools, so it needs no index.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out / "dist", src],
         cwd=out)
    wheels = list((out / "dist").glob("segkit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_configs_and_nothing_else(wheel):
    assert wheel.name == f"segkit-{segkit.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        packaged = {n[len("segkit/configs/"):]: z.read(n) for n in names if n.startswith("segkit/configs/")}
    repo = {p.relative_to(REPO / "configs").as_posix(): p.read_bytes() for p in (REPO / "configs").rglob("*.yaml")}
    assert packaged == repo  # the same files, byte for byte: _base_ fragments and sweep files included
    top = {n.split("/")[0] for n in names}
    assert top == {"segkit", f"segkit-{segkit.__version__}.dist-info"}, top  # no tests, tools, docs, configs/
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as z:
        assert "segkit = segkit.commands:main" in z.read(entry_points).decode()


@pytest.mark.slow
def test_installed_wheel_trains_and_tests_the_quickstart_in_an_empty_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    # The venv sees this interpreter's packages (torch is not downloaded again) but installs segkit
    # from the wheel, with this interpreter's pip (a venv's own bundled pip and setuptools would
    # shadow newer ones); --no-index proves the wheel's requirements are met without an index.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, console = bin_dir / "python", bin_dir / "segkit"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", wheel], cwd=tmp_path)

    empty, cache = tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SEGKIT_CACHE_DIR"] = str(cache)
    where = _run([python, "-c", "import segkit; print(segkit.__file__)"], empty, env).stdout.strip()
    site = Path(where).parent
    assert site.is_relative_to(venv), where  # the wheel's copy, not this checkout
    version = f"segkit {segkit.__version__}"
    assert _run([console, "--version"], empty, env).stdout.strip() == version
    assert _run([python, "-m", "segkit", "--version"], empty, env).stdout.strip() == version

    _run([console, "train", "quickstart", *TINY], empty, env)
    _run([console, "test", "quickstart", "work_dirs/quickstart/best.pth", *TINY, "--json-out", "test.json"], empty, env)
    run_dir = empty / "work_dirs" / "quickstart"
    assert {"best.pth", "last.pth", "config.yaml", "metrics.jsonl"} <= set(os.listdir(run_dir))
    result = json.loads((empty / "test.json").read_text())
    assert result["n"] == 8 and 0.0 <= result["dice_mean"] <= 1.0
    assert sorted(os.listdir(empty)) == ["test.json", "work_dirs"]
    # The synthetic data went to the cache folder, not into the package or the working folder.
    assert [p.name for p in (cache / "synthetic").iterdir()] == ["pets-v1-16+8-64px-seed0"]
    assert not any(p.name == "synthetic" for p in site.rglob("*")), "data written inside site-packages"
    listing = _run([console, "list", "configs", "--filter", "report"], empty, env).stdout
    assert "report/lr" in listing
    predict = ("import numpy as np; from segkit.config import load_config; from segkit.inference import Predictor; "
               f"p = Predictor(load_config('quickstart', {TINY!r}), 'work_dirs/quickstart/best.pth'); "
               "print(p(np.zeros((50, 70, 3), np.uint8)).mask.shape)")
    assert _run([python, "-c", predict], empty, env).stdout.strip() == "(50, 70)"
