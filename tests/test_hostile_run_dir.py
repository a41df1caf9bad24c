"""An OUTPUT_DIR that holds a run is protected: a new run there is refused (``--resume`` continues
it, another OUTPUT_DIR or ``--overwrite`` starts afresh), nothing is written before the run's
checks pass, a live run's lock keeps a second run out, and a resumed run appends to its logs."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from segkit.config import load_config
from segkit.engine import Trainer
from segkit.engine.run_dir import LOCK_FILE, OutputDirError, OutputDirLock, holds_run
from segkit.experiments.sweep import expand, load_sweep, run_overrides
from segkit.experiments.sweep import runner

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs" / "unet_noaug_cosine.yaml")
PLUGIN = str(Path(__file__).parent / "plugins" / "hooks_plugin.py")
RUN_FILES = ("best.pth", "last.pth", "config.yaml", "metrics.jsonl", "log.txt")


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def epoch_lines(folder: Path) -> list:
    return [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "epoch"]


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and lines[-1].startswith("segkit: error: "), res.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def finished_run(synthetic_root, tmp_path_factory):
    """One finished one-epoch run; tests copy it before changing anything."""
    from segkit.commands import main

    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", CONFIG, *tiny_overrides(synthetic_root, str(out), epochs=1)]) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


@pytest.fixture(scope="module")
def broken_root(synthetic_root, tmp_path_factory):
    """The synthetic dataset with one truncated image: the data check stops every run on it."""
    root = tmp_path_factory.mktemp("broken") / "pets"
    shutil.copytree(synthetic_root, root)
    victim = sorted((root / "images").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:40])
    return str(root)


# --------------------------------------------------------------------------- a finished run's folder
def test_a_new_run_into_a_finished_runs_folder_is_refused_and_changes_nothing(finished_run, synthetic_root,
                                                                             segkit_cli):
    assert all((finished_run / name).is_file() for name in RUN_FILES)
    before = snapshot(finished_run)
    # a different (worse) run into the same folder, as a user re-running with a changed value would
    res = segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(finished_run), epochs=1),
                     "SOLVER.BASE_LR", "0.5", check=False)
    line = one_error_line(res)
    assert f"OUTPUT_DIR '{finished_run}' already holds a run (best.pth, config.yaml, last.pth, metrics.jsonl)" in line
    assert "--resume" in line and f"OUTPUT_DIR {finished_run}_2" in line and "--overwrite" in line
    assert snapshot(finished_run) == before  # best.pth, metrics.jsonl, config.yaml: byte-identical
    assert not (finished_run / LOCK_FILE).exists()


def test_train_help_documents_the_protection(segkit_cli):
    text = " ".join(segkit_cli("train", "--help").stdout.split())
    assert "already holds a run" in text and "--overwrite" in text and "--resume" in text


def test_a_fresh_folder_or_overwrite_starts_a_new_run(run_copy, synthetic_root, segkit_cli, tmp_path):
    # the folder the error suggests is a plain new OUTPUT_DIR
    fresh = Path(f"{run_copy}_2")
    segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(fresh), epochs=1))
    assert sorted(p.name for p in fresh.iterdir()) == sorted([*RUN_FILES, "tensorboard"])

    # --overwrite replaces the old run: its files go, files that are not the run's stay
    (run_copy / "epoch_0007.pth").write_bytes(b"an old epoch checkpoint")
    (run_copy / "notes.txt").write_text("mine")
    old_best = (run_copy / "best.pth").read_bytes()
    res = segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(run_copy), epochs=1), "SEED", "7",
                     "--overwrite")
    assert "deleted the previous run's files" in res.stderr
    assert not (run_copy / "epoch_0007.pth").exists() and (run_copy / "notes.txt").read_text() == "mine"
    assert (run_copy / "best.pth").read_bytes() != old_best
    assert load_config(str(run_copy / "config.yaml")).SEED == 7
    assert epoch_lines(run_copy) == [1]
    assert len(list((run_copy / "tensorboard").iterdir())) == 1  # the old run's event file went too
    assert not (run_copy / LOCK_FILE).exists()

    res = segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(run_copy), epochs=1), "--overwrite",
                     "--resume", check=False)
    assert "--resume continues the run in OUTPUT_DIR and --overwrite replaces it" in one_error_line(res)


# --------------------------------------------------------------------------- nothing written before the checks
def test_a_run_that_fails_its_data_check_writes_nothing(run_copy, broken_root, segkit_cli, tmp_path):
    new = tmp_path / "new" / "run"
    res = segkit_cli("train", CONFIG, *tiny_overrides(broken_root, str(new), epochs=1), check=False)
    assert res.returncode == 2 and "segkit: error:" in res.stderr
    assert not (tmp_path / "new").exists()  # not even the folder

    before = snapshot(run_copy)
    for flag in ("--resume", "--overwrite"):  # the two ways into a folder that holds a run
        res = segkit_cli("train", CONFIG, *tiny_overrides(broken_root, str(run_copy), epochs=1), flag, check=False)
        assert res.returncode == 2 and "segkit: error:" in res.stderr, flag
        assert snapshot(run_copy) == before, flag  # config.yaml unchanged, --overwrite deleted nothing


# --------------------------------------------------------------------------- the lock of a live run
LOCK_HOLDER = """
import sys, time
from segkit.engine.run_dir import OutputDirLock
OutputDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_killed_holder_blocks_nothing(synthetic_root,
                                                                                        segkit_cli, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for extra in ([], ["--resume"]):
            res = segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(out), epochs=1), *extra,
                             check=False)
            line = one_error_line(res)
            assert f"OUTPUT_DIR '{out}' is in use by another training run (pid {holder.pid})" in line, extra
        assert os.listdir(out) == [LOCK_FILE]  # the refused runs wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_FILE).exists()  # a killed run leaves its lock file; the kernel dropped the lock
    segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(out), epochs=1))
    assert epoch_lines(out) == [1] and not (out / LOCK_FILE).exists()


def test_the_lock_is_taken_again_after_the_checks(synthetic_root, tmp_path):
    """A run that takes the folder while this one builds its model and checks its data wins; this
    one stops at train() without writing anything."""
    out = tmp_path / "run"
    trainer = Trainer(load_config(CONFIG, tiny_overrides(synthetic_root, str(out), epochs=1)), existing_run="refuse")
    assert not out.exists()
    with OutputDirLock(str(out)):
        with pytest.raises(OutputDirError, match=f"OUTPUT_DIR '{out}' is in use by another training run "
                                                 f"\\(pid {os.getpid()}\\)"):
            trainer.train()
        assert os.listdir(out) == [LOCK_FILE]
    assert os.listdir(out) == []


# --------------------------------------------------------------------------- resume appends
def test_resume_appends_to_metrics_and_log(run_copy, synthetic_root, segkit_cli):
    metrics, log = run_copy / "metrics.jsonl", run_copy / "log.txt"
    old_metrics, old_log, inode = metrics.read_bytes(), log.read_bytes(), metrics.stat().st_ino
    segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(run_copy), epochs=2), "--resume")
    assert metrics.read_bytes().startswith(old_metrics) and metrics.stat().st_ino == inode  # appended in place
    assert log.read_bytes().startswith(old_log)
    assert epoch_lines(run_copy) == [1, 2]


def test_resume_drops_a_torn_last_line(run_copy, synthetic_root, segkit_cli):
    metrics = run_copy / "metrics.jsonl"
    old = metrics.read_bytes()
    with open(metrics, "ab") as f:
        f.write(b'{"type": "epoch", "ep')  # a kill mid-write
    segkit_cli("train", CONFIG, *tiny_overrides(synthetic_root, str(run_copy), epochs=2), "--resume")
    assert metrics.read_bytes().startswith(old) and epoch_lines(run_copy) == [1, 2]


# --------------------------------------------------------------------------- sweeps retry failed runs
def test_a_sweep_retries_a_run_that_crashed_before_its_first_checkpoint(synthetic_root, segkit_cli, tmp_path):
    sweep = load_sweep(CONFIG, ["SOLVER.BASE_LR=1e-3"], tiny_overrides(synthetic_root, str(tmp_path / "x"), epochs=1),
                       output_root=str(tmp_path))
    (run,) = expand(sweep)
    out = Path(run.output_dir)
    out.mkdir(parents=True)
    (out / "sweep.log").write_text("=== the sweep's own log\n")
    (out / "sweep_config.yaml").write_text("_BASE_: []\n")
    assert not holds_run(str(out))  # the sweep's files are not a run
    assert "--overwrite" not in runner.train_command(sweep, run, CONFIG)

    # the first attempt diverges at its second batch, in epoch 1: no checkpoint yet
    with pytest.raises(FloatingPointError):
        segkit_cli("train", "--plugin", PLUGIN, CONFIG, *run_overrides(sweep, run),
                   "LOSS.TERMS", "[{'NAME': 'nan_at_call', 'CALL': 2}]")
    assert holds_run(str(out)) and not (out / "last.pth").exists() and not (out / LOCK_FILE).exists()
    res = segkit_cli("train", CONFIG, *run_overrides(sweep, run), check=False)  # by hand: refused, says why
    assert "saved no last.pth to --resume from" in one_error_line(res)

    cmd = runner.train_command(sweep, run, CONFIG)
    assert cmd[:4] == [sys.executable, "-m", "segkit", "train"] and "--overwrite" in cmd
    segkit_cli(*cmd[3:])  # what the sweep's retry runs
    assert epoch_lines(out) == [1] and (out / "best.pth").is_file()
    assert (out / "sweep.log").read_text() == "=== the sweep's own log\n" and (out / "sweep_config.yaml").exists()
    assert "--resume" in runner.train_command(sweep, run, CONFIG)  # now it has a last.pth
