"""Run a grid of experiments: the cartesian product of a few config values over one base config.

A study such as the lab report's section 3 is a handful of such grids. Each run trains and is
tested in child processes of its own (``runner``), so a crash costs that run only; a run counts
as finished once its ``test.json`` exists, so a killed sweep resumes by running it again.
``sweep.json`` (``manifest``) records every run's settings and outcome for ``summarize``.
``grid`` holds the axes, runs and their names; ``files`` reads sweep files and composes each
run's config. The command line is ``segkit sweep`` (segkit.commands.sweep).

    from segkit.experiments.sweep import load_sweep, run_sweep
    sweep = load_sweep("configs/report/lr.yaml", overrides=["DATA.ROOT", "/data/pets"])
    run_sweep(sweep, jobs=2)
"""
from .files import compose_config, load_sweep, read_sweep_file, validate
from .grid import (DEFAULT_OUTPUT_ROOT, GROUP_DIRS, Run, Sweep, SweepError, expand, parse_grid_arg, run_name,
                   run_overrides, short_keys, split_values)
from .manifest import LOG, MANIFEST, TEST_JSON, Manifest, read_manifest
from .runner import dry_run, execute, run_sweep

__all__ = ["Sweep", "Run", "SweepError", "parse_grid_arg", "split_values", "short_keys", "run_name",
           "expand", "load_sweep", "run_sweep", "dry_run", "execute", "read_manifest", "Manifest",
           "compose_config", "validate", "run_overrides", "read_sweep_file",
           "GROUP_DIRS", "DEFAULT_OUTPUT_ROOT", "MANIFEST", "TEST_JSON", "LOG"]
