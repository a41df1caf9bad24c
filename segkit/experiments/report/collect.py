"""Reading finished (or unfinished) runs back from disk: what the tables and plots are made of.

Only the files runs leave behind are read (``config.yaml``, ``metrics.jsonl``, ``test.json`` and
a sweep's ``sweep.json``), so a report works on any run folders, old or new, while a sweep is
still going, and without torch or TensorBoard.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ...config import flatten_config
from ..sweep import MANIFEST, TEST_JSON, read_manifest, short_keys
from ..tune.study import STUDY_DB, STUDY_FILE, sqlite_path, storage_url

__all__ = ["MISSING", "SummaryError", "RunResult", "number", "read_epochs", "read_run",
           "collect_runs", "display", "varying_config_keys", "setting_columns", "load_study_of", "read_study_info"]

MISSING = "—"
IGNORED_KEYS = ("OUTPUT_DIR",)  # differs between every pair of runs and says nothing about them


class SummaryError(ValueError):
    """Folders with no runs in them, or a grouping key no run has."""


def number(value: Any) -> Optional[float]:
    """``value`` as a float when it is a finite number, else None (missing, NaN, a string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class RunResult:
    name: str
    path: str
    sweep: str = ""
    status: str = ""
    settings: Dict[str, Any] = field(default_factory=dict)  # a sweep's grid values for this run
    from_sweep: bool = False
    config: Dict[str, Any] = field(default_factory=dict)  # config.yaml, flattened to dotted keys
    epochs: List[dict] = field(default_factory=list)  # the epoch records of metrics.jsonl
    test: Optional[dict] = None
    seconds: Optional[float] = None
    error: str = ""

    @property
    def final(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    @property
    def best(self) -> Optional[dict]:
        """The epoch with the highest val/dice (the first of equals): the one best.pth holds."""
        scored = [e for e in self.epochs if number(e.get("val/dice")) is not None]
        return max(scored, key=lambda e: e["val/dice"]) if scored else None

    def value(self, key: str) -> Any:
        if key in self.settings:
            return self.settings[key]
        return self.config.get(key)

    def label(self, keys: Sequence[str]) -> str:
        """The run told apart by ``keys`` (short names), or by its folder name when none is set."""
        short = short_keys(list(keys)) if keys else {}
        parts = [f"{short[k]}={display(self.value(k)).replace(', ', ',')}" for k in keys
                 if self.value(k) is not None]
        return ", ".join(parts) or self.name


# --------------------------------------------------------------------------- reading runs
def read_epochs(path: str) -> List[dict]:
    """Epoch records, one per epoch (the last if logged twice); lines cut short by a kill are skipped."""
    if not os.path.isfile(path):
        return []
    by_epoch: Dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("type") == "epoch" and "epoch" in record:
                by_epoch[int(record["epoch"])] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def _read_json(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError:
            return None


def read_run(path: str, **known: Any) -> RunResult:
    """One run folder; ``known`` fields (a sweep's name, status, settings…) are kept."""
    run = RunResult(name=known.pop("name", os.path.basename(os.path.normpath(path))), path=path, **known)
    config_path = os.path.join(path, "config.yaml")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            run.config = flatten_config(yaml.safe_load(f) or {})
    run.epochs = read_epochs(os.path.join(path, "metrics.jsonl"))
    run.test = _read_json(os.path.join(path, TEST_JSON))
    # A sweep calls a run finished in an earlier call "skipped"; here only the files count.
    if run.test:
        run.status = "done"
    elif run.status in _TRIAL_STATUS.values():
        pass  # a study's trial: Optuna's state says it
    elif not run.status or run.status == "skipped":
        run.status = "trained, not tested" if run.epochs else "no results"
    return run


def _runs_of_sweep(folder: str, manifest: dict) -> List[RunResult]:
    runs = []
    for entry in manifest.get("runs", []):
        path = os.path.join(folder, entry["name"])  # the folder may have moved since it ran
        if not os.path.isdir(path) and os.path.isdir(entry.get("output_dir") or ""):
            path = entry["output_dir"]
        runs.append(read_run(path, name=entry["name"], sweep=manifest.get("name", ""), status=entry.get("status", ""),
                             settings=dict(entry.get("overrides") or {}), from_sweep=True,
                             seconds=entry.get("seconds"), error=entry.get("error") or ""))
    return runs


# Optuna trial states as the report names them.
_TRIAL_STATUS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                 "WAITING": "waiting"}


def read_study_info(folder: str) -> Optional[dict]:
    """``study.json`` of a ``segkit tune`` study folder, or None."""
    return _read_json(os.path.join(folder, STUDY_FILE))


def load_study_of(folder: str, info: dict):
    """The Optuna study a study folder records; its SQLite file is looked for in the folder too,
    in case the folder was moved since."""
    import optuna

    storage = info["storage"]
    recorded = sqlite_path(storage)
    if recorded is not None and not os.path.isfile(recorded) and os.path.isfile(os.path.join(folder, STUDY_DB)):
        storage = storage_url(folder)
    try:
        return optuna.load_study(study_name=info["name"], storage=storage)
    except Exception as e:
        raise SummaryError(f"study '{info.get('name')}' in '{folder}': its storage {storage} cannot be read "
                           f"({e})") from e


def _runs_of_study(folder: str, info: dict) -> Tuple[List[RunResult], dict]:
    """A study's trials as runs (their settings are the trial's parameters) and a manifest-like
    dict of hints for the report (its title, and the loaded study under ``study`` for its plots)."""
    study = load_study_of(folder, info)
    runs = []
    for trial in study.get_trials(deepcopy=False):
        name = f"trial_{trial.number:04d}"
        path = os.path.join(folder, name)  # the folder may have moved since it ran
        if not os.path.isdir(path) and os.path.isdir(trial.user_attrs.get("output_dir") or ""):
            path = trial.user_attrs["output_dir"]
        seconds = trial.duration.total_seconds() if trial.duration else None
        runs.append(read_run(path, name=name, sweep=info.get("name", ""),
                             status=_TRIAL_STATUS.get(trial.state.name, ""), settings=dict(trial.params),
                             from_sweep=True, seconds=seconds))
    hints = {"name": info.get("name"), "study": study, "group_by": [],
             "title": f"Study {info.get('name')}: {info.get('metric')} ({info.get('direction')}), "
                      f"{info.get('sampler')} sampler, {info.get('pruner')} pruner"}
    return runs, hints


def _is_run(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f)) for f in ("metrics.jsonl", "config.yaml", TEST_JSON))


def collect_runs(paths: Sequence[str]) -> Tuple[List[RunResult], List[dict]]:
    """Runs under ``paths``: a sweep folder gives its runs, a run folder itself, any other folder
    the sweeps and runs directly inside it. Also returns the sweeps' manifests."""
    runs: List[RunResult] = []
    manifests: List[dict] = []
    for path in paths:
        if not os.path.isdir(path):
            raise SummaryError(f"'{path}' is not a folder")
        found = _collect_one(path, runs, manifests)
        if not found:
            raise SummaryError(f"no runs in '{path}': no {MANIFEST}, metrics.jsonl or config.yaml there "
                               f"or in the folders directly inside it")
    unique, seen = [], set()
    for run in runs:
        real = os.path.realpath(run.path)
        if real not in seen:
            seen.add(real)
            unique.append(run)
    return unique, manifests


def _collect_one(path: str, runs: List[RunResult], manifests: List[dict], depth: int = 0) -> int:
    manifest = read_manifest(path)
    study = read_study_info(path)
    if study is not None:
        found, hints = _runs_of_study(path, study)
        manifests.append(hints)
    elif manifest is not None:
        manifests.append(manifest)
        found = _runs_of_sweep(path, manifest)
    elif _is_run(path):
        found = [read_run(path)]
    elif depth == 0:
        return sum(_collect_one(os.path.join(path, d), runs, manifests, 1) for d in sorted(os.listdir(path))
                   if os.path.isdir(os.path.join(path, d)))
    else:
        found = []
    runs.extend(found)
    return len(found)


# --------------------------------------------------------------------------- what tells runs apart
def display(value: Any) -> str:
    """A setting as a short table cell: 0.0001, unet, HorizontalFlip+Rotate, none."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "NAME" in v for v in value):
        text = "+".join(str(v["NAME"]) for v in value)
    elif isinstance(value, list) and not value:
        text = "none"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def varying_config_keys(runs: Sequence[RunResult]) -> List[str]:
    """Config keys whose values differ between the runs (a key some runs lack counts as differing)."""
    keys: List[str] = []
    for run in runs:
        keys += [k for k in run.config if k not in keys and k not in IGNORED_KEYS]
    marker = object()
    return [k for k in keys
            if len({json.dumps(r.config.get(k, marker), sort_keys=True, default=repr) for r in runs}) > 1]


def setting_columns(runs: Sequence[RunResult]) -> List[str]:
    """The sweeps' grid keys; for runs that no sweep made, the config keys that differ between runs."""
    keys: List[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys]
    if any(not r.from_sweep for r in runs):
        keys += [k for k in varying_config_keys([r for r in runs if r.config]) if k not in keys]
    return keys
