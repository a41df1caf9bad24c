r"""Train and test every combination of grid values over one base config, one folder per run.

    segkit sweep configs/unet_noaug_cosine.yaml --grid MODEL=unet,resnet34_unet \
        --grid SOLVER.BASE_LR=1e-3,1e-4,1e-5 DATA.ROOT /data/pets
    segkit sweep configs/report/lr.yaml DATA.ROOT /data/pets       # the same grid from a file
    segkit sweep configs/report/lr.yaml DATA.ROOT /data/pets --dry-run

Each run trains and is tested in child processes (`python -m segkit train|test`), so a crash
costs that run only. Re-running the same command skips finished runs (those with test.json) and
resumes a run stopped part-way from its last.pth. sweep.json in the sweep's folder records every
run's settings and outcome, for `segkit summarize`. --plugin files are imported in every run's
child processes. Exit status: 0 when every run finished, 1 when any failed (the others still
run), 2 for a bad grid or config, 130 when interrupted.
"""
from __future__ import annotations

import sys
from typing import List

from .options import add_config, add_overrides, add_plugin

HELP = "train and test a grid of runs, resumably"


def add_arguments(parser) -> None:
    from ..experiments.sweep import DEFAULT_OUTPUT_ROOT, GROUP_DIRS  # light: no torch

    add_config(parser, help="a base config, or a sweep file with BASE, GRID, OVERRIDES, NAME, OUTPUT_ROOT, "
                            "GROUP_BY, TITLE")
    add_overrides(parser)
    add_plugin(parser)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=v1,v2",
                        help=f"a grid axis (repeatable); {', '.join(GROUP_DIRS)} pick files from "
                             f"configs/_base_/{{{','.join(GROUP_DIRS.values())}}}/")
    parser.add_argument("--name", help="the sweep's folder name (default: the file's NAME or its stem)")
    parser.add_argument("--output-root", help=f"where the sweep's folder goes (default: {DEFAULT_OUTPUT_ROOT})")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every run's config, list the runs and their overrides; run nothing")


def command_line(args) -> List[str]:
    """The command as ``segkit sweep`` would take it, for the manifest (options first, overrides last)."""
    cmd = ["segkit", "sweep", args.config]
    for axis in args.grid:
        cmd += ["--grid", axis]
    for flag, value in (("--name", args.name), ("--output-root", args.output_root)):
        if value:
            cmd += [flag, value]
    if args.jobs != 1:
        cmd += ["--jobs", str(args.jobs)]
    for plugin in args.plugin:
        cmd += ["--plugin", plugin]
    return cmd + list(args.opts)


def run(args) -> int:
    from ..experiments.sweep import SweepError, dry_run, load_sweep, run_sweep

    if args.jobs < 1:
        raise SweepError(f"--jobs must be at least 1, got {args.jobs}")
    sweep = load_sweep(args.config, args.grid, args.opts, args.name, args.output_root, args.plugin)
    if args.dry_run:
        return dry_run(sweep)
    try:
        return run_sweep(sweep, args.jobs, command_line(args))
    except KeyboardInterrupt:
        print("segkit sweep: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
