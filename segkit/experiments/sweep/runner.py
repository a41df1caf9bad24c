"""Running a sweep: each run trains, then is tested, in child processes of its own.

A crash (a bad value, a NaN, running out of memory) then costs that run only, and ``--jobs``
runs share the machine without sharing a Python process. The children are ordinary
``python -m segkit train|test`` commands, written to the run's ``sweep.log`` so any run can be
repeated by hand. A run is finished once its ``test.json`` exists, which makes a killed sweep
resumable by running it again; a run killed part-way through training resumes from ``last.pth``,
and a failed run that saved no ``last.pth`` (it crashed or was killed in its first epoch) is
trained again from the start with ``train --overwrite``, which replaces what it left.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence

from .files import compose_config, validate
from .grid import GROUP_DIRS, Run, Sweep, expand, run_overrides, run_picks, shadowed_overrides
from .manifest import LOG, TEST_JSON, Manifest, now

__all__ = ["is_finished", "train_command", "test_command", "execute", "run_sweep", "dry_run"]

_TAIL_LINES = 20
INTERRUPTED = (130, 143)  # a child stopped by SIGINT or SIGTERM


def is_finished(run: Run) -> bool:
    return os.path.isfile(os.path.join(run.output_dir, TEST_JSON))


def train_command(sweep: Sweep, run: Run, config: str) -> List[str]:
    """``python -m segkit train [--plugin P] [--resume last.pth | --overwrite] CONFIG KEY VALUE…``."""
    from ...engine.run_dir import holds_run  # here: the engine pulls in torch

    cmd = [sys.executable, "-m", "segkit", "train", *_plugin_args(sweep)]
    last = os.path.join(run.output_dir, "last.pth")
    if os.path.isfile(last):  # a run killed part-way continues where it stopped
        cmd += ["--resume", last]
    elif holds_run(run.output_dir):  # a failed attempt with nothing to resume: train it again, replacing it
        cmd += ["--overwrite"]
    return cmd + [config, *run_overrides(sweep, run)]


def test_command(sweep: Sweep, run: Run) -> List[str]:
    """``python -m segkit test [--plugin P] --json-out test.json config.yaml best.pth`` (else last.pth)."""
    best = os.path.join(run.output_dir, "best.pth")
    checkpoint = best if os.path.isfile(best) else os.path.join(run.output_dir, "last.pth")
    # Options before the positionals: test's trailing KEY VALUE list would swallow them otherwise.
    return [sys.executable, "-m", "segkit", "test", *_plugin_args(sweep),
            "--json-out", os.path.join(run.output_dir, TEST_JSON),
            os.path.join(run.output_dir, "config.yaml"), checkpoint]


def _plugin_args(sweep: Sweep) -> List[str]:
    return [a for p in sweep.plugins for a in ("--plugin", p)]


def _child_env(jobs: int) -> Dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if jobs > 1 and "OMP_NUM_THREADS" not in env:  # N trainings sharing the cores, not N × all cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:]).rstrip()


def _step(cmd: List[str], log, env: Dict[str, str]) -> int:
    log.write(f"\n=== {now()}\n$ {shlex.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env).returncode


def execute(sweep: Sweep, run: Run, env: Dict[str, str]) -> dict:
    """Train, then test, one run in child processes; their output goes to the run's sweep.log.
    Returns the run's manifest fields (status, seconds, exit_code, failed_stage, error)."""
    os.makedirs(run.output_dir, exist_ok=True)
    log_path = os.path.join(run.output_dir, LOG)
    start = time.perf_counter()
    config = compose_config(sweep, run, run.output_dir)
    with open(log_path, "a", encoding="utf-8") as log:
        stage, code = "train", _step(train_command(sweep, run, config), log, env)
        if code == 0:
            stage, code = "test", _step(test_command(sweep, run), log, env)
        if code == 0 and not is_finished(run):
            log.write(f"test exited 0 but wrote no {TEST_JSON}\n")
            code = 1
    seconds = round(time.perf_counter() - start, 1)
    if code == 0:
        return {"status": "done", "seconds": seconds, "exit_code": 0, "failed_stage": None, "error": None}
    error = _tail(log_path)  # the child's last words, before the line below
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {stage} failed with exit code {code}\n")
    return {"status": "failed", "seconds": seconds, "exit_code": code, "failed_stage": stage, "error": error}


def _result_line(run: Run) -> str:
    with open(os.path.join(run.output_dir, TEST_JSON), encoding="utf-8") as f:
        result = json.load(f)
    return f"test Dice {result['dice_mean']:.4f} ± {result['dice_std']:.4f} on {result['n']} images"


def run_sweep(sweep: Sweep, jobs: int = 1, argv: Sequence[str] = (), out=None) -> int:
    """Run every unfinished run, ``jobs`` at a time; 0 when all finished, 1 when any failed,
    130 when a run was interrupted (the others in progress finish; no new one starts)."""
    runs = expand(sweep)
    validate(sweep, runs)
    os.makedirs(sweep.folder, exist_ok=True)
    manifest = Manifest(sweep, runs, argv)
    todo = []
    for i, run in enumerate(runs):
        if is_finished(run):
            manifest.data["runs"][i]["status"] = "skipped"
        else:
            todo.append(run)
    manifest.write()
    _say(out, f"sweep {sweep.name}: {len(runs)} runs in {sweep.folder}; {len(runs) - len(todo)} finished "
              f"already (skipped), {len(todo)} to run, {jobs} at a time")
    for key in shadowed_overrides(sweep):
        _say(out, f"note: the fixed override {key} is replaced by the sweep's own value in every run")
    env, start, stop = _child_env(jobs), time.perf_counter(), threading.Event()
    index = {run.name: i + 1 for i, run in enumerate(runs)}

    def one(run: Run) -> None:
        if stop.is_set():
            return
        tag = f"[{index[run.name]}/{len(runs)}] {run.name}"
        _say(out, f"{tag}: training")
        result = execute(sweep, run, env)
        manifest.update(run.name, **result)
        if result["status"] == "done":
            _say(out, f"{tag}: done in {result['seconds']:.0f} s, {_result_line(run)}")
        else:
            last = (result["error"] or "").splitlines()[-1:] or [""]
            _say(out, f"{tag}: FAILED in {result['failed_stage']} (exit {result['exit_code']}): {last[0]}\n"
                      f"    log: {os.path.join(run.output_dir, LOG)}")
            if result["exit_code"] in INTERRUPTED:  # the user interrupted it: start nothing new
                stop.set()

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            for future in [pool.submit(one, run) for run in todo]:
                future.result()
        except KeyboardInterrupt:
            stop.set()  # let the runs in progress save and stop; start no others
            raise
    counts = manifest.counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in ("done", "skipped", "failed", "pending") if counts.get(s))
    _say(out, f"sweep {sweep.name}: {summary} in {time.perf_counter() - start:.0f} s; manifest {manifest.path}")
    if stop.is_set():
        return 130
    return 1 if counts.get("failed") else 0


def dry_run(sweep: Sweep, out=None) -> int:
    """Check every run's config and list the runs with their configs and overrides; run nothing."""
    runs = expand(sweep)
    validate(sweep, runs)
    _say(out, f"sweep {sweep.name}: {len(runs)} runs in {sweep.folder}")
    for i, run in enumerate(runs, 1):
        groups = run_picks(sweep, run)
        state = "finished, would skip" if is_finished(run) else "would run"
        picks = "".join(f" + _base_/{GROUP_DIRS[k]}/{v}.yaml" for k, v in groups.items())
        _say(out, f"[{i}/{len(runs)}] {run.name} ({state})\n    config: {sweep.base}{picks}\n"
                  f"    overrides: {shlex.join(run_overrides(sweep, run))}")
    return 0


def _say(out, text: str) -> None:
    print(text, file=out or sys.stdout, flush=True)
