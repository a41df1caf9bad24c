r"""Paired ablation: segkit against a plain PyTorch loop, one factor moved at a time, same seeds.

    segkit ablate configs/resnet34_unet_aug_cosine.yaml SOLVER.EPOCHS 10 INPUT.SIZE 128 \
        --arms plain segkit segkit_fp32 --seeds 42 1 2
    segkit ablate CONFIG --table-only --reference plain --reference-checkpoint last

Results go to OUTPUT_ROOT/results.jsonl, one line per (arm, seed, task); a rerun skips what is
there. The tables give each arm's mean over seeds, then its difference from the reference paired
by seed (the smaller effects show there). Put KEY VALUE overrides right after CONFIG: --arms and
--seeds take every word after them.
"""
from __future__ import annotations

import os

from .options import add_config, add_overrides, add_plugin

HELP = "paired ablation of segkit against a plain PyTorch loop"


def add_arguments(parser) -> None:
    add_config(parser, help="the recipe both sides train (e.g. configs/resnet34_unet_aug_cosine.yaml)")
    add_overrides(parser)
    add_plugin(parser)
    parser.add_argument("--arms", nargs="+", default=["plain", "segkit"], help="arms to train (see "
                        "segkit.experiments.ablation.ARMS; default: plain segkit)")
    parser.add_argument("--arm-config", action="append", default=[], metavar="NAME=CONFIG",
                        help="an extra segkit arm trained from CONFIG as it stands (the shared overrides do not "
                             "apply; SEED, DATA.ROOT and OUTPUT_DIR do); name it in --arms too")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=["sample", "cross"], choices=["sample", "cross"])
    parser.add_argument("--data-root", default=os.environ.get("SEGKIT_PET_ROOT", ""),
                        help="Oxford-layout root (default: $SEGKIT_PET_ROOT)")
    parser.add_argument("--output-root", default="work_dirs/ablation")
    parser.add_argument("--label", default="", help="suffix for arm names in the results (e.g. a commit), so "
                        "runs of one arm before and after a change sit side by side")
    parser.add_argument("--table-only", action="store_true", help="print the table of the results so far and exit")
    parser.add_argument("--reference", default="plain", help="the arm the Δ columns compare with (default: plain)")
    parser.add_argument("--reference-checkpoint", choices=["best", "last"],
                        help="the reference's checkpoint in the paired tables (default: the same as the arm's)")
    parser.add_argument("--show", nargs="+", metavar="ARM", help="table rows, in this order (default: every arm)")


def run(args) -> int:
    from ..utils.logging import setup_logging
    from ..experiments.ablation import known_arms, load_results, paired_summary, run_ablation, summarize
    from ..plugins import import_plugins

    setup_logging()
    import_plugins(args.plugin)
    results_path = os.path.join(args.output_root, "results.jsonl")
    arms = known_arms(args.arm_config)
    if not args.table_only:
        run_ablation(args.config, args.opts, args.arms, arms, args.seeds, args.tasks, args.data_root,
                     args.output_root, args.label)
    records = load_results(results_path)
    for pick in ("best", "last"):
        print(summarize(records, reference=args.reference, pick=pick, arms=args.show))
        print()
        print(paired_summary(records, reference=args.reference, pick=pick,
                             reference_pick=args.reference_checkpoint, arms=args.show))
        print()
    return 0
