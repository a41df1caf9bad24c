"""Search, not grids: ``segkit tune`` samples a space of config values with Optuna, prunes hopeless
runs after each epoch, and shares one study between workers through its storage.

``space`` parses ``KEY=SPEC``; ``study`` reads settings and tune files, opens the storage and
checks everything before a trial trains; ``runner`` runs workers and trials (each trial a normal
segkit run in ``<study>/trial_NNNN``) and scores the best trial on the test split at the end.
The command line is ``segkit tune`` (segkit.commands.tune); ``segkit summarize STUDY_DIR``
reports a study like a sweep, plus Optuna's history and importance plots.

    from segkit.experiments.tune import load_tune, run_tune
    settings = load_tune("unet_aug_cosine", ["SOLVER.BASE_LR=log:1e-5:1e-3"], ["DATA.ROOT", "/data/pets"],
                         trials=12)
    run_tune(settings, jobs=2)
"""
from .space import KINDS, Param, TuneError, parse_space_arg, parse_spec
from .study import (DEFAULT_OUTPUT_ROOT, DIRECTIONS, PRUNERS, SAMPLERS, STUDY_FILE, TuneSettings, check_space,
                    load_tune, open_study, storage_url)

__all__ = ["TuneError", "Param", "KINDS", "parse_spec", "parse_space_arg", "TuneSettings", "load_tune", "check_space",
           "open_study", "storage_url", "run_tune", "run_worker", "PruningHook", "trial_folder", "STUDY_FILE",
           "BEST_TEST_JSON", "SAMPLERS", "PRUNERS", "DIRECTIONS", "DEFAULT_OUTPUT_ROOT"]

_RUNNER = ("run_tune", "run_worker", "PruningHook", "trial_folder", "BEST_TEST_JSON")


def __getattr__(name):
    """The runner's names, imported on first use: it imports torch (training), while the settings,
    the space and ``segkit summarize`` need only the light modules."""
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
