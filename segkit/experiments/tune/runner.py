"""Workers: each runs trials of the shared study until the study holds ``--trials`` trials, then the
best trial's checkpoint is scored on the test split once.

A trial is a normal segkit run in ``<study>/trial_NNNN`` (config.yaml, checkpoints, logs,
TensorBoard), trained in the worker's process. A hook reports the monitored metric to Optuna
after every epoch; when the pruner says stop, the run ends there like an early stop, keeps its
files, and the trial is marked pruned. A trial's value is the best value of the metric over
its epochs (a val metric: the test split never chooses).
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from collections import Counter
from typing import Any, Dict, List, Optional

from ...config import load_config
from ...engine import HookBase, Trainer
from ...engine.evaluation import evaluate_checkpoint
from ...utils.files import atomic_write_json
from .space import TuneError
from .study import STUDY_FILE, TuneSettings, check_space, open_study, trial_config, trial_overrides

__all__ = ["PruningHook", "run_tune", "run_worker", "trial_folder", "BEST_TEST_JSON"]

logger = logging.getLogger("segkit")
BEST_TEST_JSON = "test.json"  # in the best trial's folder
_COUNTED = ("COMPLETE", "PRUNED", "RUNNING")  # trials that count towards --trials


def trial_folder(settings: TuneSettings, number: int) -> str:
    return os.path.join(settings.folder, f"trial_{number:04d}")


class PruningHook(HookBase):
    """After each epoch: report ``metric`` to the Optuna trial and stop the run when the pruner
    says so (the run keeps what it wrote; the trial is marked pruned afterwards)."""

    def __init__(self, trainer, trial, metric: str, direction: str, pruner: str):
        self.trainer, self.trial, self.metric, self.pruner = trainer, trial, metric, pruner
        self.better = max if direction == "maximize" else min
        self.best: Optional[float] = None
        self.pruned_at: Optional[int] = None

    def after_epoch(self) -> None:
        t = self.trainer
        if self.metric not in t.epoch_metrics:
            logged = ", ".join(sorted(k for k in t.epoch_metrics if "/" in k))
            raise TuneError(f"--metric {self.metric} is not logged by the run; it logs {logged or 'nothing'} "
                            f"(val/ metrics need the evaluation hook)")
        value = float(t.epoch_metrics[self.metric])
        if math.isfinite(value):
            self.best = value if self.best is None else self.better(self.best, value)
        self.trial.report(value, t.epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = t.epoch + 1
            t.stop_reason = f"pruned by the {self.pruner} pruner ({self.metric} {value:.4f})"


def _trial_cfg(settings: TuneSettings, params: Dict[str, Any], folder: str):
    cfg = load_config(trial_config(settings, params, folder),
                      trial_overrides(settings, params) + ["OUTPUT_DIR", folder], freeze=False)
    for hook in cfg.HOOKS:  # best.pth follows the metric the study optimises
        if hook.get("NAME") == "checkpoint":
            hook["MONITOR"], hook["MODE"] = settings.metric, "max" if settings.direction == "maximize" else "min"
    cfg.freeze()
    return cfg


def _objective(settings: TuneSettings):
    import optuna

    def objective(trial) -> float:
        params = {p.key: p.suggest(trial) for p in settings.space}
        folder = trial_folder(settings, trial.number)
        trial.set_user_attr("output_dir", os.path.abspath(folder))
        cfg = _trial_cfg(settings, params, folder)
        trainer = Trainer(cfg)
        hook = PruningHook(trainer, trial, settings.metric, settings.direction, settings.pruner)
        trainer.hooks.append(hook)
        logger.info("trial %d: %s", trial.number, ", ".join(f"{k}={v}" for k, v in params.items()))
        trainer.train()
        if hook.best is None:
            raise FloatingPointError(f"trial {trial.number}: {settings.metric} was never finite")
        if hook.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", hook.pruned_at)
            raise optuna.TrialPruned(f"pruned at epoch {hook.pruned_at}")
        return hook.best

    return objective


def _counted(study) -> int:
    import optuna

    states = tuple(getattr(optuna.trial.TrialState, s) for s in _COUNTED)
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(settings: TuneSettings, seed: int, epochs: int, threads: Optional[int] = None) -> None:
    """Run trials until the study holds ``settings.trials`` finished or running ones (or the timeout)."""
    import optuna
    import torch

    from ...plugins import import_plugins

    import_plugins(settings.plugins)
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(settings, seed, epochs)

    def enough(study, trial) -> None:
        if _counted(study) >= settings.trials:
            study.stop()

    if _counted(study) < settings.trials:
        study.optimize(_objective(settings), timeout=settings.timeout, callbacks=[enough], catch=(Exception,),
                       gc_after_trial=True)


def _spawn_workers(settings: TuneSettings, seed: int, epochs: int, jobs: int,
                   threads: int) -> List[multiprocessing.Process]:
    """``jobs - 1`` more workers on this machine (this process is one too), ``threads`` each."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=run_worker, args=(settings, seed + i, epochs, threads), daemon=False)
             for i in range(1, jobs)]
    for p in procs:
        p.start()
    return procs


def _best_test(settings: TuneSettings, study) -> Optional[Dict[str, Any]]:
    """The best trial's best.pth scored on the test split (written to its folder as test.json)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    best = study.best_trial
    folder = best.user_attrs.get("output_dir") or trial_folder(settings, best.number)
    cfg = load_config(os.path.join(folder, "config.yaml"))
    result = evaluate_checkpoint(cfg, os.path.join(folder, "best.pth"), split="test")
    atomic_write_json(os.path.join(folder, BEST_TEST_JSON), result)
    summary = {"trial": best.number, "value": best.value, "params": best.params, "output_dir": folder,
               "test_dice_mean": result["dice_mean"], "test_dice_std": result["dice_std"], "test_n": result["n"]}
    study.set_user_attr("best_test", summary)
    return summary


def run_tune(settings: TuneSettings, jobs: int = 1, command: Optional[List[str]] = None) -> Dict[str, Any]:
    """Check the space, join or create the study, run ``jobs`` workers here, then test the best
    trial. Returns the study's counts, the best trial and its test scores."""
    if jobs < 1:
        raise TuneError(f"--jobs must be >= 1, got {jobs}")
    check_space(settings)
    probe = load_config(trial_config(settings, {}, settings.folder), trial_overrides(settings, {}))
    seed, epochs = int(probe.SEED), int(probe.SOLVER.EPOCHS)
    study = open_study(settings, seed, epochs)  # refuses a clashing study before any worker starts
    atomic_write_json(os.path.join(settings.folder, STUDY_FILE), {
        "name": settings.name, "storage": settings.storage_url, "base": os.path.abspath(settings.base),
        "space": [p.describe() for p in settings.space], "overrides": settings.overrides,
        "metric": settings.metric, "direction": settings.direction, "sampler": settings.sampler,
        "pruner": settings.pruner, "trials": settings.trials, "command": list(command or [])})
    start = time.perf_counter()
    # Workers on this machine share its cores; one worker keeps torch's own thread count.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    procs = _spawn_workers(settings, seed, epochs, jobs, threads) if jobs > 1 else []
    try:
        run_worker(settings, seed, epochs, threads=threads)
    finally:
        for p in procs:
            p.join()
    wall = time.perf_counter() - start
    study = open_study(settings, seed, epochs)
    counts = dict(Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False)))
    if not counts.get("complete") and not counts.get("pruned"):
        raise TuneError(f"no trial of study '{settings.name}' finished ({json.dumps(counts)}); see the trials' "
                        f"log.txt under {settings.folder}")
    return {"study": settings.name, "folder": settings.folder, "storage": settings.storage_url,
            "counts": counts, "wall_s": wall, "best": _best_test(settings, study)}
