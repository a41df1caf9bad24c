"""An OUTPUT_DIR that holds a run is that run's: what a new run may do there, and the lock of a live run.

A folder *holds a run* when it has a file a training run leaves behind: ``config.yaml``,
``metrics.jsonl`` or a checkpoint (``last.pth``, ``best.pth``, ``epoch_NNNN.pth``). Files other
tools put in a run folder (a sweep's ``sweep.log`` and ``sweep_config.yaml``, ``test.json``, a
stale ``.segkit.lock``) do not make it one.

``segkit train`` refuses to start a *new* run (no ``--resume``) in a folder that holds one,
unless ``--overwrite`` asks for the old run's files to be deleted (once the new run's checks have
passed). While a run trains, its process holds an exclusive ``flock`` on
``OUTPUT_DIR/.segkit.lock`` (holding the pid), so a second run into the same folder stops
with an error instead of interleaving its files with the first run's. The kernel drops the
lock when the process dies, so a killed run never blocks the next one; a run that ends
normally removes the file.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import time
from typing import Callable, List, Optional

try:
    import fcntl
except ImportError:  # Windows: no flock; runs go unlocked
    fcntl = None

from ..utils.distributed import all_reduce_max, is_distributed, is_main_process

__all__ = ["OutputDirError", "LOCK_FILE", "RUN_MARKERS", "EXISTING_RUN_POLICIES", "run_files", "holds_run",
           "check_new_run", "clear_run", "probe_lock", "OutputDirLock", "on_main_process"]

logger = logging.getLogger(__name__)

LOCK_FILE = ".segkit.lock"
# Files whose presence means a training run wrote into the folder (glob patterns, in OUTPUT_DIR).
RUN_MARKERS = ("config.yaml", "metrics.jsonl", "last.pth", "best.pth", "epoch_[0-9]*.pth")
# What --overwrite deletes besides the markers: the rest of what the standard hooks write.
_OTHER_RUN_FILES = ("log.txt", os.path.join("tensorboard", "events.out.tfevents.*"))
# Trainer(existing_run=...): "ignore" writes over whatever is there (the library's behaviour,
# for callers that manage their own folders); "refuse" stops a new run in a folder holding one
# (segkit train); "replace" deletes the old run's files once the checks pass (train --overwrite).
EXISTING_RUN_POLICIES = ("ignore", "refuse", "replace")


class OutputDirError(ValueError):
    """OUTPUT_DIR cannot take this run: it holds another run, or one is training there now."""


def run_files(folder: str) -> List[str]:
    """The names of the run files in ``folder`` (sorted; empty when it holds no run or does not exist)."""
    if not os.path.isdir(folder):
        return []
    found = set()
    for pattern in RUN_MARKERS:
        found.update(os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(folder), pattern))
                     if os.path.isfile(p))
    return sorted(found)


def holds_run(folder: str) -> bool:
    return bool(run_files(folder))


def _free_sibling(folder: str) -> str:
    """A folder name beside ``folder`` that holds no run: ``folder_2``, ``folder_3``, …"""
    base = os.path.normpath(folder)
    n = 2
    while holds_run(f"{base}_{n}"):
        n += 1
    return f"{base}_{n}"


def check_new_run(folder: str) -> None:
    """Raise ``OutputDirError`` when ``folder`` holds a run; a new run must not write over it."""
    found = run_files(folder)
    if not found:
        return
    where = f"OUTPUT_DIR '{folder}' already holds a run ({', '.join(found)}); nothing was written."
    fresh = f"train a new run into another folder (e.g. OUTPUT_DIR {_free_sibling(folder)})"
    replace = "or replace the old run with --overwrite (deletes its checkpoints and logs)"
    if "last.pth" in found:
        raise OutputDirError(f"{where} Continue it with --resume, {fresh}, {replace}.")
    raise OutputDirError(f"{where} It saved no last.pth to --resume from: {fresh}, {replace}.")


def clear_run(folder: str) -> List[str]:
    """Delete the run files in ``folder`` (markers, log.txt, TensorBoard event files, and temporary
    files of interrupted checkpoint saves); returns their paths relative to ``folder``."""
    removed = []
    names = RUN_MARKERS + _OTHER_RUN_FILES
    patterns = list(names) + [f".{os.path.basename(n)}.*.tmp" for n in RUN_MARKERS]
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), pattern))):
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
                removed.append(os.path.relpath(path, folder))
    tensorboard = os.path.join(folder, "tensorboard")
    if os.path.isdir(tensorboard) and not os.listdir(tensorboard):
        shutil.rmtree(tensorboard, ignore_errors=True)
    return removed


def _holder(fd: int) -> str:
    """' (pid N)' from the lock file open as ``fd``, or '' when it holds none yet."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _in_use(folder: str, holder: str) -> OutputDirError:
    return OutputDirError(f"OUTPUT_DIR '{folder}' is in use by another training run{holder}; wait for it to "
                          f"finish, stop it, or choose another OUTPUT_DIR")


def probe_lock(folder: str) -> None:
    """Raise ``OutputDirError`` when a live run holds ``folder``'s lock; creates nothing."""
    path = os.path.join(folder, LOCK_FILE)
    if fcntl is None or not os.path.isfile(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # conflicts only with a holder's LOCK_EX
        except BlockingIOError:
            raise _in_use(folder, _holder(fd)) from None
        except OSError:
            return  # no flock on this filesystem; acquire() will say so
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class OutputDirLock:
    """An exclusive ``flock`` on ``folder/.segkit.lock`` holding this process's pid.

    ``acquire`` raises ``OutputDirError`` naming the folder and the holder's pid when another
    process holds it. The lock belongs to the open file, so the kernel drops it when the
    process dies; ``release`` deletes the file (while still holding it, so whoever opened the
    old file notices and starts over)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        if fcntl is None:
            return
        tries = 0
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                tries += 1
                if tries < 5:  # a probe_lock() holds it for microseconds; a run holds it for hours
                    time.sleep(0.05)
                    continue
                raise _in_use(self.folder, holder) from None
            except OSError as e:  # e.g. a filesystem without flock
                os.close(fd)
                logger.warning("could not lock %s (%s); nothing stops a second run from writing into it",
                               self.folder, e)
                return
            try:  # the file we locked is still the one at the path (not removed by a run that just ended)
                st, now = os.fstat(fd), os.stat(self.path)
                current = (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.remove(self.path)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "OutputDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def on_main_process(fn: Callable[[], None], folder: str) -> None:
    """Run ``fn`` on rank 0 only (it touches OUTPUT_DIR); when it raises, every rank raises, so
    no process goes on to wait in a collective for one that stopped."""
    error: Optional[BaseException] = None
    if is_main_process():
        try:
            fn()
        except Exception as e:  # noqa: BLE001  re-raised below, after the other ranks have heard
            error = e
    if is_distributed():
        failed = all_reduce_max(1.0 if error is not None else 0.0)[0] > 0
        if failed and error is None:
            raise OutputDirError(f"OUTPUT_DIR '{folder}': rank 0 could not start the run (see its error)")
    if error is not None:
        raise error
