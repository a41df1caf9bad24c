r"""Search a space of config values with Optuna: sample, prune hopeless runs, share the study.

    segkit tune resnet34_unet_aug_cosine DATA.ROOT /data/pets SOLVER.EPOCHS 10 INPUT.SIZE 128 \
        --space SOLVER.BASE_LR=log:1e-5:1e-3 --space SOLVER.BATCH_SIZE=choice:4,8 \
        --space AUGMENT=choice:lab,none --space MODEL=choice:resnet34_unet,resnet34_unet_light --trials 12
    segkit tune my_tune.yaml --jobs 2                       # a tune file: BASE, SPACE, OVERRIDES, …
    segkit summarize work_dirs/studies/resnet34_unet_aug_cosine

SPEC is log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or choice:a,b,c; MODEL, AUGMENT, SCHEDULE and
DATASET pick configs/_base_ files as in a sweep. Each trial is a normal run in
<output-root>/<study>/trial_NNNN; after every epoch it reports --metric (a val metric) and the
pruner may stop it there (the run keeps its files and the trial is marked pruned). A trial's
value is its best --metric. At the end the best trial's best.pth is scored on the test split.

Workers: --jobs N runs N workers here; the same command started on other machines with the same
--storage (a server database: postgresql://…, mysql://…) and --study joins the study. Workers never
run a trial twice and together stop at --trials (one more per extra worker when workers start
their last trials in the same instant). A worker killed mid-trial leaves that trial
running until its heartbeat is 3 minutes old; the next worker then marks it failed and queues
its parameters again as a new trial (once). The default storage is a SQLite file in the study
folder (WAL mode, long busy timeout): workers on one machine. optuna-dashboard reads the same
storage: optuna-dashboard sqlite:///work_dirs/studies/NAME/study.db
"""
from __future__ import annotations

import sys

from .jsonout import to_json
from .options import add_config, add_json_out, add_overrides, add_plugin, check_output_file, write_json_out

HELP = "search config values with Optuna (pruning, resumable, shared by workers)"
# segkit.experiments.tune's names, spelt out so building the parser does not import torch;
# tests/test_tune.py keeps them in step.
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")


def add_arguments(parser) -> None:
    add_config(parser, help="a base config (path or packaged name), or a tune file with BASE, SPACE, OVERRIDES, "
                            "NAME, OUTPUT_ROOT, TRIALS, METRIC, DIRECTION, SAMPLER, PRUNER, TIMEOUT")
    add_overrides(parser)
    add_plugin(parser)
    add_json_out(parser)
    parser.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                        help="a searched key (repeatable): log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or choice:a,b,c")
    parser.add_argument("--trials", type=int, help="trials in the whole study, all workers together (default 20)")
    parser.add_argument("--timeout", type=float, metavar="S", help="this worker starts no trial after S seconds")
    parser.add_argument("--study", dest="name", metavar="NAME", help="the study's name and folder (default: the "
                        "tune file's NAME or the config's stem)")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL shared by the workers (default: "
                        "sqlite:///<output-root>/<study>/study.db)")
    parser.add_argument("--output-root", help="where the study's folder goes (default: work_dirs/studies)")
    parser.add_argument("--metric", help="the epoch metric to optimise (default val/dice)")
    parser.add_argument("--direction", choices=DIRECTIONS, help="maximize (default) or minimize")
    parser.add_argument("--sampler", choices=SAMPLERS, help="tpe (default), random, or grid (choice: SPECs only)")
    parser.add_argument("--pruner", choices=PRUNERS, help="median (default), hyperband or none")
    parser.add_argument("--jobs", type=int, default=1, help="workers on this machine (default 1); the cores are "
                        "shared between them")


def command_line(args) -> list:
    """The command as typed, for study.json (options first, overrides last)."""
    cmd = ["segkit", "tune", args.config]
    for text in args.space:
        cmd += ["--space", text]
    for flag in ("trials", "timeout", "name", "storage", "output_root", "metric", "direction", "sampler", "pruner"):
        value = getattr(args, flag)
        if value is not None:
            cmd += ["--study" if flag == "name" else "--" + flag.replace("_", "-"), str(value)]
    for plugin in args.plugin:
        cmd += ["--plugin", plugin]
    return cmd + list(args.opts)


def run(args) -> int:
    from ..experiments.tune import load_tune, run_tune
    from ..plugins import import_plugins
    from ..utils.logging import setup_logging

    setup_logging()
    import_plugins(args.plugin)
    settings = load_tune(args.config, args.space, args.opts, trials=args.trials, timeout=args.timeout,
                         name=args.name, storage=args.storage, output_root=args.output_root, metric=args.metric,
                         direction=args.direction, sampler=args.sampler, pruner=args.pruner)
    settings.plugins = list(args.plugin)
    check_output_file("--json-out", args.json_out, inputs=[settings.base])
    try:
        result = run_tune(settings, args.jobs, command_line(args))
    except KeyboardInterrupt:
        print("segkit tune: interrupted; run the same command again to continue the study", file=sys.stderr)
        return 130
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result["counts"].items()))
    print(f"study {result['study']}: {counts} in {result['wall_s']:.0f} s; storage {result['storage']}")
    best = result["best"]
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        print(f"best: trial {best['trial']} ({params}), {settings.metric} {best['value']:.4f}; test Dice "
              f"{best['test_dice_mean']:.4f} ± {best['test_dice_std']:.4f} on {best['test_n']} images "
              f"({best['output_dir']})")
    write_json_out(args.json_out, result)
    print(to_json(result), flush=True)
    return 0
