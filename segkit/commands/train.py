"""Train a model from a config.

    segkit train quickstart                        # a packaged config, by name (segkit list configs)
    segkit train configs/unet_aug_cosine.yaml DATA.ROOT /data/pets SOLVER.EPOCHS 10
    segkit train configs/unet_aug_cosine.yaml --resume            # OUTPUT_DIR/last.pth
    segkit train configs/unet_aug_cosine.yaml --resume work_dirs/x/last.pth

--resume continues a run with its optimizer, schedule, epoch and random state;
MODEL.WEIGHTS PATH loads weights only (fine-tuning).

An OUTPUT_DIR that already holds a run (its config.yaml, metrics.jsonl or checkpoints) is
protected: a new run there stops with an error before writing anything. Continue the run
with --resume, give a new run a folder of its own (OUTPUT_DIR work_dirs/other), or replace
the old run with --overwrite. A run writes nothing into OUTPUT_DIR until its checks (model,
data check, checkpoint to resume) pass, and holds a lock on the folder while it trains, so a
second run started into the same folder stops with an error naming the first one's pid.
"""
from __future__ import annotations

import os
import sys

from .options import add_config, add_overrides, add_plugin, load_setup

HELP = "train a model from a config"
CHECKPOINT_SUFFIXES = (".pth", ".pt")


def add_arguments(parser) -> None:
    add_config(parser)
    add_overrides(parser)
    add_plugin(parser)
    parser.add_argument("--resume", nargs="?", const="", metavar="PATH",
                        help="continue the run saved in PATH (default: OUTPUT_DIR/last.pth) with its optimizer, "
                             "schedule, epoch and random state; MODEL.WEIGHTS PATH loads weights only")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in OUTPUT_DIR even though it holds one: once the new run's checks "
                             "pass, the old run's checkpoints, config.yaml, metrics.jsonl, log.txt and TensorBoard "
                             "events are deleted. Without it, a new run into a folder holding a run stops with an "
                             "error (use --resume to continue that run, or another OUTPUT_DIR)")


def resume_and_overrides(resume, opts):
    """(checkpoint or "" or None, overrides). PATH is optional, so ``--resume KEY VALUE`` parses
    KEY as PATH; a token that is neither a file nor a .pth/.pt name is given back to the
    overrides, where it is the first key (``--resume`` precedes the overrides it is given with)."""
    if resume and not (os.path.isfile(resume) or resume.endswith(CHECKPOINT_SUFFIXES)):
        return "", [resume, *opts]
    return resume, list(opts)


def run(args) -> int:
    from ..engine import Trainer
    from ..visualize import refuse_dataset_overlap

    resume, args.opts = resume_and_overrides(args.resume, args.opts)
    if resume is not None and getattr(args, "overwrite", False):
        raise ValueError("--resume continues the run in OUTPUT_DIR and --overwrite replaces it; give one of them")
    cfg = load_setup(args, training=True)
    refuse_dataset_overlap(cfg.OUTPUT_DIR, cfg.DATA.ROOT, what="OUTPUT_DIR", may_hold=True)
    if resume == "":
        resume = os.path.join(cfg.OUTPUT_DIR, "last.pth")
    trainer = Trainer(cfg, resume=resume, existing_run="replace" if getattr(args, "overwrite", False) else "refuse")
    trainer.train()
    if trainer.interrupted:
        _say_how_to_resume(trainer, args)
        return 130 if trainer.interrupted == "SIGINT" else 143
    return 0


def _say_how_to_resume(trainer, args) -> None:
    from ..utils.distributed import get_world_size, is_main_process

    per_node = os.environ.get("LOCAL_WORLD_SIZE", get_world_size())
    launcher = "python" if get_world_size() == 1 else f"torchrun --nproc_per_node {per_node}"
    cmd = " ".join([f"{launcher} tools/train.py", args.config, "--resume", trainer.last_checkpoint or "",
                    *args.opts])
    if is_main_process():  # rank 0 saved the checkpoint; one message, not one per process
        print(f"segkit: stopped by {trainer.interrupted}; saved {trainer.last_checkpoint}. Resume with:\n  {cmd}",
              file=sys.stderr)
