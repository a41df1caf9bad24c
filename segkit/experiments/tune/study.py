"""A study: its settings (command line or tune file), its folder, its Optuna storage, sampler and
pruner, and the checks that run before any trial trains.

The storage is the study: every worker started with the same ``--storage`` and ``--study``
shares it. The default is a SQLite file in the study folder, in WAL mode and with a long busy
timeout, so workers on one machine write to it without "database is locked" errors. Several
machines need a server database (``postgresql://…``, ``mysql://…``). Optuna's heartbeat marks
a trial whose worker died as failed, and a retry callback queues its parameters again, so a
killed worker loses only the epochs of the trial it was running.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ...config import load_config, resolve_config
from ..sweep.grid import GROUP_DIRS, is_word, value_text
from ..sweep.files import base_choices, write_composed_config
from .space import Param, TuneError, parse_space_arg, parse_spec, space_signature

__all__ = ["TuneSettings", "TUNE_FILE_KEYS", "SAMPLERS", "PRUNERS", "DIRECTIONS", "DEFAULT_OUTPUT_ROOT",
           "STUDY_FILE", "TRIAL_CONFIG", "load_tune", "trial_config", "trial_overrides", "check_space", "open_study",
           "storage_url", "sqlite_path", "STUDY_DB"]

TUNE_FILE_KEYS = ("BASE", "SPACE", "OVERRIDES", "NAME", "OUTPUT_ROOT", "TRIALS", "METRIC", "DIRECTION",
                  "SAMPLER", "PRUNER", "TIMEOUT")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
DEFAULT_OUTPUT_ROOT = os.path.join("work_dirs", "studies")
STUDY_FILE = "study.json"  # in the study folder: where the storage is, for summarize and later workers
STUDY_DB = "study.db"  # in the study folder: the default SQLite storage
TRIAL_CONFIG = "tune_config.yaml"  # in a trial folder when a group key picks _base_ files
HEARTBEAT_S = 60  # a running trial's worker writes a heartbeat this often
GRACE_S = 180  # a trial with no heartbeat for this long is marked failed (and retried once)


@dataclass
class TuneSettings:
    """Everything a worker needs to join the study (the command line over the tune file)."""

    base: str
    space: List[Param] = field(default_factory=list)
    overrides: List[str] = field(default_factory=list)
    name: str = ""
    output_root: str = DEFAULT_OUTPUT_ROOT
    trials: int = 20
    timeout: Optional[float] = None
    metric: str = "val/dice"
    direction: str = "maximize"
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str = ""
    plugins: List[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return os.path.join(self.output_root, self.name)

    @property
    def storage_url(self) -> str:
        return self.storage or storage_url(self.folder)


def storage_url(folder: str) -> str:
    """The default storage: ``study.db`` in the study folder."""
    return "sqlite:///" + os.path.abspath(os.path.join(folder, STUDY_DB))


def _read_tune_file(path: str) -> Optional[dict]:
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise TuneError(f"'{path}' is not valid YAML: {e}") from e
    if not isinstance(data, dict) or "SPACE" not in data:
        return None  # a plain config: the base itself
    unknown = [k for k in data if k not in TUNE_FILE_KEYS]
    if unknown:
        raise TuneError(f"tune file '{path}': unknown key '{unknown[0]}'; tune files hold {', '.join(TUNE_FILE_KEYS)}")
    if "BASE" not in data:
        raise TuneError(f"tune file '{path}' has no BASE: the config every trial starts from")
    return data


def load_tune(config: str, space_args: Sequence[str] = (), overrides: Sequence[str] = (),
              **options: Any) -> TuneSettings:
    """Settings from a base config or a tune file, plus ``--space`` arguments, KEY VALUE overrides
    and the command line's options (``trials``, ``metric``…; None keeps the file's or the default)."""
    path = resolve_config(config)
    data = _read_tune_file(path)
    settings = TuneSettings(base=path, name=Path(path).stem)
    if data is not None:
        base = str(data["BASE"])
        beside = os.path.join(os.path.dirname(path), base)  # relative to the tune file, else a name or path
        settings.base = resolve_config(beside if not os.path.isabs(base) and os.path.exists(beside) else base)
        space = data.get("SPACE") or {}
        if not isinstance(space, dict):
            raise TuneError(f"tune file '{path}': SPACE must map config keys to SPECs")
        settings.space = [parse_spec(str(k), v) for k, v in space.items()]
        fixed = data.get("OVERRIDES") or {}
        if not isinstance(fixed, dict):
            raise TuneError(f"tune file '{path}': OVERRIDES must map config keys to values")
        for key, value in fixed.items():
            settings.overrides += [str(key), value_text(value)]
        for key, attr in (("NAME", "name"), ("OUTPUT_ROOT", "output_root"), ("TRIALS", "trials"),
                          ("METRIC", "metric"), ("DIRECTION", "direction"), ("SAMPLER", "sampler"),
                          ("PRUNER", "pruner"), ("TIMEOUT", "timeout")):
            if key in data:
                setattr(settings, attr, data[key])
    for text in space_args:
        param = parse_space_arg(text)
        settings.space = [p for p in settings.space if p.key != param.key] + [param]
    if len(overrides) % 2:
        raise TuneError(f"overrides come in KEY VALUE pairs; got an odd number: {list(overrides)}")
    settings.overrides += list(overrides)
    for attr, value in options.items():
        if value is not None:
            setattr(settings, attr, value)
    _check_settings(settings)
    return settings


def _check_settings(s: TuneSettings) -> None:
    if not s.space:
        raise TuneError("nothing to search: give --space KEY=SPEC (e.g. SOLVER.BASE_LR=log:1e-5:1e-3) or a tune "
                        "file with SPACE")
    if not is_word(str(s.name)):
        raise TuneError(f"study name {s.name!r} must be one plain word (letters, digits, . _ + -)")
    for attr, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("direction", DIRECTIONS)):
        if getattr(s, attr) not in choices:
            raise TuneError(f"--{attr} '{getattr(s, attr)}' is not one of {', '.join(choices)}")
    if not isinstance(s.trials, int) or isinstance(s.trials, bool) or s.trials < 1:
        raise TuneError(f"--trials must be a whole number >= 1, got {s.trials!r}")
    if s.timeout is not None and not (isinstance(s.timeout, (int, float)) and s.timeout > 0):
        raise TuneError(f"--timeout must be a number of seconds > 0, got {s.timeout!r}")
    if s.metric.startswith("test/"):
        raise TuneError(f"--metric {s.metric}: the test split never chooses a model; use a val/ metric "
                        f"(val/dice, val/loss, …)")
    if s.sampler == "grid" and any(p.kind != "choice" for p in s.space):
        raise TuneError("--sampler grid needs every SPEC to be choice:…; "
                        + ", ".join(p.describe() for p in s.space if p.kind != "choice") + " is a range")
    keys = [p.key for p in s.space]
    fixed = [k for k in s.overrides[0::2] if k in keys]
    if fixed:
        raise TuneError(f"{fixed[0]} is both searched (--space) and fixed (KEY VALUE); keep one")


def trial_config(settings: TuneSettings, params: Dict[str, Any], folder: str) -> str:
    """The config a trial trains from: the base, or a small file in ``folder`` whose ``_BASE_``
    lists the base and the ``_base_`` files its group keys pick."""
    picks = {k: v for k, v in params.items() if k in GROUP_DIRS}
    if not picks:
        return settings.base
    bases = [os.path.abspath(settings.base)]
    for key, value in picks.items():
        choices_dir, known = base_choices(settings.base, key)
        path = choices_dir / f"{value}.yaml"
        if not (is_word(str(value)) and path.is_file()):
            raise TuneError(f"search space {key}: '{value}' names no file in {choices_dir}; choose from: {known}")
        bases.append(str(path))
    os.makedirs(folder, exist_ok=True)
    return write_composed_config(os.path.join(folder, TRIAL_CONFIG), "# written by segkit tune: the base config, "
                                 "then the _base_ files this trial picks\n", bases)


def trial_overrides(settings: TuneSettings, params: Dict[str, Any]) -> List[str]:
    """The fixed overrides, then the trial's values of the plain (non-group) keys."""
    out = list(settings.overrides)
    for key, value in params.items():
        if key not in GROUP_DIRS:
            out += [key, value_text(value)]
    return out


def check_space(settings: TuneSettings) -> None:
    """Load the config at each end of every range and for every choice before anything trains, so an
    unknown key or a value out of range stops the study at once, naming the key."""
    with tempfile.TemporaryDirectory(prefix="segkit_tune_") as tmp:
        for param in settings.space:
            for i, value in enumerate(param.sample_values()):
                folder = os.path.join(tmp, f"{len(param.key)}_{i}")
                try:
                    load_config(trial_config(settings, {param.key: value}, folder),
                                trial_overrides(settings, {param.key: value}))
                except TuneError:
                    raise
                except (ValueError, FileNotFoundError) as e:
                    raise TuneError(f"search space {param.describe()}: {e}") from e


def sqlite_path(url: str) -> Optional[str]:
    """The file of a ``sqlite:///`` storage URL; None for any other storage."""
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else None


def _open_storage(optuna, url: str):
    path = sqlite_path(url)
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise TuneError(f"--storage {url}: folder '{folder}' does not exist")
        try:  # WAL: readers never block the writer; persistent in the file once set
            with sqlite3.connect(path, timeout=60) as db:
                db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise TuneError(f"--storage {url}: cannot open the SQLite file ({e})") from e
    kwargs = {"connect_args": {"timeout": 60}} if path is not None else {}
    # A trial whose worker died is marked failed and its parameters are queued once more (the
    # callback's name changed in Optuna 4.9). Heartbeats are "experimental" to Optuna; stable in use.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
            retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
        else:
            retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S, **retry)
        except Exception as e:  # sqlalchemy: unknown dialect, refused connection, missing driver
            raise TuneError(f"--storage {url} cannot be opened: {' '.join(str(e).split())[:300]}") from e


def _sampler(optuna, settings: TuneSettings, seed: int):
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        return optuna.samplers.GridSampler({p.key: list(p.choices) for p in settings.space}, seed=seed)
    # constant_liar: parallel workers do not all try the point the finished trials point to
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(5, settings.trials))


def _pruner(optuna, settings: TuneSettings, epochs: int):
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    return optuna.pruners.NopPruner()


def open_study(settings: TuneSettings, seed: int, epochs: int):
    """Create the study, or join it when it exists with the same space; a study of that name with
    another space (or metric, or direction) is refused."""
    import optuna

    os.makedirs(settings.folder, exist_ok=True)
    storage = _open_storage(optuna, settings.storage_url)
    signature = {"space": space_signature(settings.space), "metric": settings.metric,
                 "direction": settings.direction}
    try:
        study = optuna.load_study(study_name=settings.name, storage=storage,
                                  sampler=_sampler(optuna, settings, seed), pruner=_pruner(optuna, settings, epochs))
    except KeyError:
        study = optuna.create_study(study_name=settings.name, storage=storage, direction=settings.direction,
                                    sampler=_sampler(optuna, settings, seed),
                                    pruner=_pruner(optuna, settings, epochs), load_if_exists=True)
    saved = study.user_attrs.get("segkit")
    if saved is None:
        study.set_user_attr("segkit", signature)
    elif saved != signature:
        differ = [k for k in signature if saved.get(k) != signature[k]]
        raise TuneError(f"study '{settings.name}' in {settings.storage_url} exists with another "
                        f"{' and '.join(differ)}: "
                        f"it has {saved[differ[0]]}, this command gives {signature[differ[0]]}. Use another --study "
                        f"name, or the same settings to join it")
    return study
