"""``sweep.json``: the sweep's settings and every run's outcome, for people and for ``summarize``.

It is rewritten (atomically) after every change, so a reader never sees half a file and a killed
sweep leaves a manifest that says which runs finished. The file names a sweep leaves in each
run's folder are defined here because the manifest points at them and the report reads them.
"""
from __future__ import annotations

import datetime
import json
import os
import threading
from typing import Any, Dict, List, Optional, Sequence

from ...utils.files import atomic_write_json
from .grid import Run, Sweep

__all__ = ["MANIFEST", "TEST_JSON", "LOG", "Manifest", "read_manifest", "now"]

MANIFEST = "sweep.json"  # in the sweep's folder
TEST_JSON = "test.json"  # in a run's folder: its test result; a run counts as finished once it exists
LOG = "sweep.log"  # in a run's folder: the child commands and everything they printed


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def read_manifest(folder: str) -> Optional[dict]:
    """The manifest of the sweep in ``folder``, or None when there is none."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Manifest:
    """``sweep.json``: the sweep's settings and one entry per run, rewritten after every change.

    Runs of an earlier call keep the time they took; everything else starts again as pending.
    ``update`` may be called from several threads (``--jobs``)."""

    def __init__(self, sweep: Sweep, runs: List[Run], argv: Sequence[str]):
        self.path = os.path.join(sweep.folder, MANIFEST)
        self._lock = threading.Lock()
        previous = {r["name"]: r for r in (read_manifest(sweep.folder) or {}).get("runs", [])}
        self.data = {
            "name": sweep.name, "base": os.path.abspath(sweep.base), "title": sweep.title,
            "grid": {k: v for k, v in sweep.grid}, "overrides": list(sweep.overrides), "picks": sweep.picks,
            "group_by": list(sweep.group_by), "command": list(argv),
            "started": now(), "updated": now(),
            "runs": [self._entry(run, previous.get(run.name, {})) for run in runs],
        }

    @staticmethod
    def _entry(run: Run, old: dict) -> dict:
        return {"name": run.name, "overrides": run.settings, "status": "pending",
                "seconds": old.get("seconds"), "exit_code": None, "failed_stage": None, "error": None,
                "output_dir": os.path.abspath(run.output_dir),
                "config": os.path.abspath(os.path.join(run.output_dir, "config.yaml")),
                "test_json": os.path.abspath(os.path.join(run.output_dir, TEST_JSON)),
                "log": os.path.abspath(os.path.join(run.output_dir, LOG))}

    def update(self, name: str, **fields: Any) -> None:
        """Change one run's entry and rewrite the file."""
        with self._lock:
            entry = next(r for r in self.data["runs"] if r["name"] == name)
            entry.update(fields)
            self.data["updated"] = now()
            atomic_write_json(self.path, self.data)

    def write(self) -> None:
        with self._lock:
            atomic_write_json(self.path, self.data)

    def counts(self) -> Dict[str, int]:
        """Runs per status: pending, done, skipped, failed."""
        out: Dict[str, int] = {}
        for r in self.data["runs"]:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out
