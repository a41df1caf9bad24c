"""Tables (Markdown and CSV), loss/Dice curves and a ranking from run or sweep folders.

    segkit summarize work_dirs/sweeps/report_lr                 # a sweep's folder
    segkit summarize work_dirs/studies/pets_search              # a segkit tune study: plus Optuna's plots
    segkit summarize work_dirs/a work_dirs/b --group-by MODEL --out work_dirs/ab

It reads only what runs leave on disk (config.yaml, metrics.jsonl, test.json, sweep.json, a
study's storage), so it works on any run folders, old or new, and while a sweep is still going. It writes summary.md
(a table per group, the ranking, the unfinished runs), summary.csv and curves_<group>.png, and
prints the ranking.
"""
from __future__ import annotations

import os

HELP = "tables, curves and a ranking from run or sweep folders"


def add_arguments(parser) -> None:
    from ..experiments.sweep import GROUP_DIRS  # light: no torch, no matplotlib

    parser.add_argument("work_dirs", nargs="+", metavar="WORK_DIR",
                        help="a sweep folder (with sweep.json), a study folder (study.json), a run folder, or a "
                             "folder of those")
    parser.add_argument("--out", help="where to write summary.md, summary.csv and curves_*.png "
                                      "(default: the first WORK_DIR)")
    parser.add_argument("--group-by", action="append", default=[], metavar="KEY",
                        help=f"one table and one plot per value of KEY (repeatable), e.g. MODEL or "
                             f"SOLVER.BATCH_SIZE; default: the sweep file's GROUP_BY. Group keys: "
                             f"{', '.join(GROUP_DIRS)} or any config key")
    parser.add_argument("--title", help="the heading of summary.md (default: the sweep file's TITLE)")


def run(args) -> int:
    from ..experiments.report import ranked_name, summarize

    result = summarize(args.work_dirs, args.out, args.group_by, args.title)
    for i, (run_result, text) in enumerate(result["ranking"], 1):
        print(f"{i}. {ranked_name(run_result, result['with_sweep'])}: {text}")
    wrote = ["summary.md", "summary.csv"] + [os.path.basename(p) for p in result["plots"]]
    print(f"{len(result['runs'])} runs; wrote {', '.join(wrote)} to {result['out']}")
    return 0
