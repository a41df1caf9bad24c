"""Run a grid of experiments: the cartesian product of a few config values over one base config.

A study such as the lab report's section 3 is a handful of such grids. Each run trains and is
tested in child processes of its own, so a crash (a bad value, a NaN, running out of memory)
costs that run only. A run counts as finished once its ``test.json`` exists, which makes a
killed sweep resumable by running the same command again; a run killed part-way through
training continues from its ``last.pth``. ``sweep.json`` beside the runs records every run's
settings and outcome, for people and for ``segkit summarize``.

    segkit sweep configs/unet_noaug_cosine.yaml --grid MODEL=unet,resnet34_unet \\
        --grid SOLVER.BASE_LR=1e-3,1e-4,1e-5 DATA.ROOT /data/pets
    segkit sweep configs/report/lr.yaml DATA.ROOT /data/pets       # the same grid from a file
"""
from __future__ import annotations

import argparse
import datetime
import difflib
import hashlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .config import load_config
# The command line's own value parser, so a grid value means exactly what it would as an override.
from .config import parse_value

__all__ = ["Sweep", "Run", "SweepError", "parse_grid_arg", "split_values", "short_keys", "run_name",
           "expand", "load_sweep", "run_sweep", "read_manifest", "main",
           "GROUP_DIRS", "MANIFEST", "TEST_JSON", "LOG"]

# Grid keys that pick a whole file from configs/_base_/<folder>/ instead of setting one value.
GROUP_DIRS = {"MODEL": "models", "SCHEDULE": "schedules", "AUGMENT": "augment", "DATASET": "datasets"}
MANIFEST = "sweep.json"
TEST_JSON = "test.json"
LOG = "sweep.log"
RUN_CONFIG = "sweep_config.yaml"
DEFAULT_OUTPUT_ROOT = os.path.join("work_dirs", "sweeps")
SWEEP_FILE_KEYS = ("BASE", "GRID", "OVERRIDES", "NAME", "OUTPUT_ROOT", "GROUP_BY", "TITLE")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_WORD = re.compile(r"[A-Za-z0-9_.+-]+")
_MAX_NAME = 160  # well under the 255 bytes file systems allow for one path component
_TAIL_LINES = 20


class SweepError(ValueError):
    """A grid, sweep file or override that cannot make a sweep."""


# --------------------------------------------------------------------------- grid parsing
def split_values(text: str) -> List[str]:
    """Split ``v1,v2,...`` on the commas outside brackets and quotes, so ``[4,8],[2,4]`` is two values."""
    parts, current, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth < 0:
                raise SweepError(f"unbalanced brackets in grid values {text!r}")
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if depth or quote:
        raise SweepError(f"unbalanced brackets or quotes in grid values {text!r}")
    parts.append("".join(current).strip())
    return parts


def parse_grid_arg(text: str) -> Tuple[str, List[Any]]:
    """``KEY=v1,v2`` -> (KEY, [v1, v2]) with each value read like a command-line override."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--grid {text!r}: expected KEY=v1,v2,... such as SOLVER.BASE_LR=1e-3,1e-4")
    raw = split_values(values)
    if any(not v for v in raw):
        raise SweepError(f"--grid {key}: empty value in {values!r}")
    return key, [parse_value(v) for v in raw]


def _check_axis(key: str, values: List[Any]) -> None:
    if not values:
        raise SweepError(f"grid key {key} has no values")
    texts = [json.dumps(v, sort_keys=True, default=str) for v in values]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        raise SweepError(f"grid key {key} repeats the value(s) {', '.join(dupes)}")
    if key == "OUTPUT_DIR":
        raise SweepError("OUTPUT_DIR cannot be a grid key: the sweep names each run's folder; "
                         "use --output-root and --name")


# --------------------------------------------------------------------------- run naming
def short_keys(keys: Sequence[str]) -> Dict[str, str]:
    """The shortest dotted suffix that still tells each key apart, lower-cased:
    SOLVER.BASE_LR -> base_lr, but SOLVER.SCHEDULER.NAME and MODEL.BACKBONE.NAME -> scheduler.name, backbone.name."""
    split = {k: k.split(".") for k in keys}
    out = {}
    for key, parts in split.items():
        for n in range(1, len(parts) + 1):
            suffix = parts[-n:]
            if all(other[-n:] != suffix for k, other in split.items() if k != key):
                break
        out[key] = ".".join(suffix).lower()
    return out


def format_value(value: Any) -> str:
    """A value as a file-name-safe word: 0.001, 1e-05, 4-8-16 for [4, 8, 16]."""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "-".join(format_value(v) for v in value) or "empty"
    elif isinstance(value, dict):
        text = "-".join(f"{k}-{format_value(v)}" for k, v in value.items()) or "empty"
    else:
        text = str(value)
    return _SAFE.sub("_", text).strip("_") or "_"


def run_name(settings: Dict[str, Any], short: Optional[Dict[str, str]] = None) -> str:
    """``model=unet__base_lr=0.001``: readable, safe as a folder name, stable across re-runs."""
    if not settings:
        return "default"
    short = short or short_keys(list(settings))
    name = "__".join(f"{_SAFE.sub('_', short[k])}={format_value(v)}" for k, v in settings.items())
    if len(name) > _MAX_NAME:  # keep it a legal file name; the hash keeps it unique
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:_MAX_NAME - 12]}__{digest}"
    return name


def value_text(value: Any) -> str:
    """A value as an override token that the command line parses back to the same value."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return repr(value)


# --------------------------------------------------------------------------- the sweep
@dataclass
class Run:
    name: str
    settings: Dict[str, Any]  # grid key -> this run's value, in grid order
    output_dir: str


@dataclass
class Sweep:
    base: str  # the base config file
    grid: List[Tuple[str, List[Any]]] = field(default_factory=list)
    overrides: List[str] = field(default_factory=list)  # KEY VALUE tokens for every run
    name: str = ""
    output_root: str = DEFAULT_OUTPUT_ROOT
    group_by: List[str] = field(default_factory=list)
    title: str = ""
    plugins: List[str] = field(default_factory=list)
    picks: Dict[str, str] = field(default_factory=dict)  # fixed group keys, e.g. AUGMENT none for every run

    @property
    def folder(self) -> str:
        return os.path.join(self.output_root, self.name)

    def set_axis(self, key: str, values: List[Any]) -> None:
        """Add a grid axis; naming a key again replaces its values (the command line beats the file)."""
        _check_axis(key, values)
        self.grid = [(k, v) for k, v in self.grid if k != key] + [(key, list(values))]


def expand(sweep: Sweep) -> List[Run]:
    """Every combination of the grid's values, in the order the axes were given."""
    keys = [k for k, _ in sweep.grid]
    short = short_keys(keys)
    runs, seen = [], {}
    for combo in itertools.product(*(values for _, values in sweep.grid)):
        settings = dict(zip(keys, combo))
        name = run_name(settings, short)
        if name in seen:
            raise SweepError(f"runs {seen[name]} and {settings} would share the folder name '{name}'; "
                             f"make the grid values differ in letters, digits or . _ + -")
        seen[name] = settings
        runs.append(Run(name, settings, os.path.join(sweep.folder, name)))
    return runs


def configs_dir(base: str) -> Path:
    """The folder holding ``_base_/``: the nearest one above the base config, else segkit's own."""
    for folder in Path(base).resolve().parents:
        if (folder / "_base_").is_dir():
            return folder
        if (folder / "configs" / "_base_").is_dir():
            return folder / "configs"
    return Path(__file__).resolve().parents[1] / "configs"


def group_file(sweep: Sweep, key: str, value: Any) -> str:
    """The ``_base_`` file a group key's value names, e.g. MODEL=unet -> _base_/models/unet.yaml."""
    folder = configs_dir(sweep.base) / "_base_" / GROUP_DIRS[key]
    choices = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise SweepError(f"grid {key}={value!r}: a {key} value names a file in {folder}; "
                         f"expected a plain name, one of: {choices}")
    path = folder / f"{value}.yaml"
    if not path.is_file():
        raise SweepError(f"grid {key}={value}: there is no {path}; choose from: {choices}")
    return str(path)


def split_settings(run: Run) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(group picks, plain overrides) of a run's settings."""
    groups = {k: v for k, v in run.settings.items() if k in GROUP_DIRS}
    return groups, {k: v for k, v in run.settings.items() if k not in GROUP_DIRS}


def run_picks(sweep: Sweep, run: Run) -> Dict[str, Any]:
    """The ``_base_`` pieces a run merges over the base: the fixed ones, then its grid's."""
    return {**sweep.picks, **split_settings(run)[0]}


def run_overrides(sweep: Sweep, run: Run) -> List[str]:
    """Fixed overrides, then the grid's, then OUTPUT_DIR: on the command line the last wins."""
    _, plain = split_settings(run)
    tokens = list(sweep.overrides)
    for key, value in plain.items():
        tokens += [key, value_text(value)]
    return tokens + ["OUTPUT_DIR", run.output_dir]


def compose_config(sweep: Sweep, run: Run, folder: str) -> str:
    """The config a run trains from: the base alone, or a small file in ``folder`` whose ``_BASE_``
    lists the base and then the ``_base_`` pieces the run's group keys pick."""
    groups = run_picks(sweep, run)
    if not groups:
        return os.path.abspath(sweep.base)
    bases = [os.path.abspath(sweep.base)] + [group_file(sweep, k, v) for k, v in groups.items()]
    path = os.path.join(folder, RUN_CONFIG)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# written by segkit sweep '{sweep.name}': the base config, then the pieces this run's "
                f"grid picks ({', '.join(f'{k}={v}' for k, v in groups.items())})\n")
        yaml.safe_dump({"_BASE_": bases}, f, sort_keys=False)
    return path


def validate(sweep: Sweep, runs: List[Run]) -> None:
    """Load every run's config before anything trains, so a misspelt key or a value of the wrong
    type stops the sweep at once instead of failing run after run hours later."""
    with tempfile.TemporaryDirectory(prefix="segkit_sweep_") as tmp:
        for run in runs:
            folder = os.path.join(tmp, run.name)
            os.makedirs(folder)
            try:
                load_config(compose_config(sweep, run, folder), run_overrides(sweep, run))
            except SweepError:
                raise
            except (ValueError, FileNotFoundError) as e:
                raise SweepError(f"run {run.name}: {e}") from e


def shadowed_overrides(sweep: Sweep) -> List[str]:
    """Fixed override keys that a grid key or the sweep's OUTPUT_DIR replaces in every run."""
    grid = {k for k, _ in sweep.grid} | {"OUTPUT_DIR"}
    return [k for k in sweep.overrides[0::2] if k in grid]


# --------------------------------------------------------------------------- sweep files
def _read_sweep_file(path: str) -> Optional[dict]:
    """The file's mapping when it is a sweep file (it has BASE or GRID), else None: a plain config."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise SweepError(f"'{path}' is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not ({"BASE", "GRID"} & set(data)):
        return None
    unknown = [k for k in data if k not in SWEEP_FILE_KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], SWEEP_FILE_KEYS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SweepError(f"sweep file '{path}': unknown key '{unknown[0]}'.{hint} "
                         f"Sweep files hold {', '.join(SWEEP_FILE_KEYS)}")
    if "BASE" not in data:
        raise SweepError(f"sweep file '{path}' has no BASE: the config every run starts from")
    return data


def _as_list(path: str, key: str, value: Any) -> List[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        raise SweepError(f"sweep file '{path}': {key} must be a list of values, got a mapping")
    return [value]


def _from_sweep_file(path: str, data: dict) -> Sweep:
    base = data["BASE"]
    if not isinstance(base, str):
        raise SweepError(f"sweep file '{path}': BASE must be a config path, got {base!r}")
    sweep = Sweep(base=os.path.normpath(base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)),
                  name=str(data.get("NAME") or Path(path).stem),
                  output_root=str(data.get("OUTPUT_ROOT") or DEFAULT_OUTPUT_ROOT),
                  group_by=[str(k) for k in _as_list(path, "GROUP_BY", data.get("GROUP_BY") or [])],
                  title=str(data.get("TITLE") or ""))
    grid = data.get("GRID") or {}
    if not isinstance(grid, dict):
        raise SweepError(f"sweep file '{path}': GRID must map keys to lists of values")
    for key, values in grid.items():
        # YAML 1.1 reads 1e-4 (no dot) as a string; read strings as the command line would.
        sweep.set_axis(str(key), [parse_value(v) for v in _as_list(path, f"GRID.{key}", values)])
    fixed = data.get("OVERRIDES") or {}
    if not isinstance(fixed, dict):
        raise SweepError(f"sweep file '{path}': OVERRIDES must map keys to values")
    for key, value in fixed.items():
        sweep.overrides += [str(key), value_text(value)]
    return sweep


def load_sweep(config: str, grid_args: Sequence[str] = (), overrides: Sequence[str] = (),
               name: Optional[str] = None, output_root: Optional[str] = None,
               plugins: Sequence[str] = ()) -> Sweep:
    """A sweep from a base config or a sweep file plus command-line grid axes and overrides."""
    data = _read_sweep_file(config)
    sweep = _from_sweep_file(config, data) if data is not None else Sweep(base=config, name=Path(config).stem)
    for text in grid_args:
        sweep.set_axis(*parse_grid_arg(text))
    if len(overrides) % 2:
        raise SweepError(f"overrides come in KEY VALUE pairs; got an odd number: {list(overrides)}")
    sweep.overrides += list(overrides)
    _take_picks(sweep)
    sweep.name = name or sweep.name
    sweep.output_root = output_root or sweep.output_root
    sweep.plugins = list(plugins)
    if not _WORD.fullmatch(sweep.name):
        raise SweepError(f"sweep name {sweep.name!r} must be one plain word (letters, digits, . _ + -)")
    if not os.path.isfile(sweep.base):
        raise FileNotFoundError(f"base config '{sweep.base}' does not exist")
    return sweep


def _take_picks(sweep: Sweep) -> None:
    """Move fixed group keys (``AUGMENT none``) out of the overrides: they pick files, not values."""
    plain = []
    for key, value in zip(sweep.overrides[0::2], sweep.overrides[1::2]):
        if key in GROUP_DIRS:
            sweep.picks[key] = parse_value(value)
        else:
            plain += [key, value]
    sweep.overrides = plain


# --------------------------------------------------------------------------- the manifest
def read_manifest(folder: str) -> Optional[dict]:
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json_atomic(path: str, data: Any) -> None:
    """Write then rename, so a reader (or a kill) never sees half a file."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
    os.replace(tmp, path)


class Manifest:
    """``sweep.json``: the sweep's settings and one entry per run, rewritten after every change."""

    def __init__(self, sweep: Sweep, runs: List[Run], argv: Sequence[str]):
        self.path = os.path.join(sweep.folder, MANIFEST)
        self._lock = threading.Lock()
        previous = {r["name"]: r for r in (read_manifest(sweep.folder) or {}).get("runs", [])}
        self.data = {
            "name": sweep.name, "base": os.path.abspath(sweep.base), "title": sweep.title,
            "grid": {k: v for k, v in sweep.grid}, "overrides": list(sweep.overrides), "picks": sweep.picks,
            "group_by": list(sweep.group_by), "command": list(argv),
            "started": _now(), "updated": _now(),
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
        with self._lock:
            entry = next(r for r in self.data["runs"] if r["name"] == name)
            entry.update(fields)
            self.data["updated"] = _now()
            write_json_atomic(self.path, self.data)

    def write(self) -> None:
        with self._lock:
            write_json_atomic(self.path, self.data)

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for r in self.data["runs"]:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- running
def is_finished(run: Run) -> bool:
    return os.path.isfile(os.path.join(run.output_dir, TEST_JSON))


def train_command(sweep: Sweep, run: Run, config: str) -> List[str]:
    cmd = [sys.executable, "-m", "segkit.cli", "train", *_plugin_args(sweep)]
    last = os.path.join(run.output_dir, "last.pth")
    if os.path.isfile(last):  # a run killed part-way continues where it stopped
        cmd += ["--resume", last]
    return cmd + [config, *run_overrides(sweep, run)]


def test_command(sweep: Sweep, run: Run) -> List[str]:
    best = os.path.join(run.output_dir, "best.pth")
    checkpoint = best if os.path.isfile(best) else os.path.join(run.output_dir, "last.pth")
    # Options before the positionals: test's trailing KEY VALUE list would swallow them otherwise.
    return [sys.executable, "-m", "segkit.cli", "test", *_plugin_args(sweep),
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
    log.write(f"\n=== {_now()}\n$ {shlex.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env).returncode


def execute(sweep: Sweep, run: Run, env: Dict[str, str]) -> dict:
    """Train, then test, one run in child processes; their output goes to the run's sweep.log."""
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
    """Run every unfinished run, ``jobs`` at a time; 0 when all finished, 1 when any failed."""
    runs = expand(sweep)
    validate(sweep, runs)
    os.makedirs(sweep.folder, exist_ok=True)
    manifest = Manifest(sweep, runs, argv)
    todo = []
    for run in runs:
        if is_finished(run):
            manifest.data["runs"][runs.index(run)]["status"] = "skipped"
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
            if result["exit_code"] in (130, 143):  # the user interrupted it: start nothing new
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


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segkit sweep",
        description="Train and test every combination of grid values, one output folder per run. "
                    "Re-running the same command skips finished runs (those with test.json).")
    p.add_argument("config", help="a base config, or a sweep file with BASE, GRID, OVERRIDES, NAME, OUTPUT_ROOT, "
                                  "GROUP_BY, TITLE")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=v1,v2",
                   help="a grid axis (repeatable); MODEL, SCHEDULE, AUGMENT and DATASET pick files from "
                        "configs/_base_/{models,schedules,augment,datasets}/")
    p.add_argument("--name", help="the sweep's folder name (default: the file's NAME or its stem)")
    p.add_argument("--output-root", help=f"where the sweep's folder goes (default: {DEFAULT_OUTPUT_ROOT})")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their overrides; run nothing")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import this file (or module) in every run, as tools/train.py --plugin does")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE",
                   help="overrides for every run, e.g. DATA.ROOT /data/pets SOLVER.EPOCHS 10")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_intermixed_args(argv)
    try:
        if args.jobs < 1:
            raise SweepError(f"--jobs must be at least 1, got {args.jobs}")
        sweep = load_sweep(args.config, args.grid, args.opts, args.name, args.output_root, args.plugin)
        if args.dry_run:
            return dry_run(sweep)
        return run_sweep(sweep, args.jobs, ["segkit", "sweep", *argv])
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("SEGKIT_DEBUG"):
            raise
        print(f"segkit sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segkit sweep: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
