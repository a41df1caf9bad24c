"""Command-line entry points: ``segkit train|test|check-data|list``; the scripts in tools/ call these.

Each command only parses arguments and hands a config to the library.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from . import summary, sweep

__all__ = ["main", "train_main", "test_main", "list_main"]

_OPTS_HELP = "config overrides as KEY VALUE pairs, e.g. SOLVER.EPOCHS 10 DATA.ROOT /data/pets"


def user_errors(fn):
    """Report a bad config, path, name or checkpoint as one line on stderr and exit 2.

    These are the user's to fix, and a traceback through the library hides the message.
    Set SEGKIT_DEBUG=1 to get the traceback anyway.
    """
    def wrapped(argv: Optional[List[str]] = None) -> int:
        from .engine.checkpoint import CheckpointError  # ConfigError is a ValueError

        expected = (FileNotFoundError, KeyError, ValueError, TypeError, CheckpointError, PermissionError,
                    ModuleNotFoundError)
        try:
            return fn(argv)
        except expected as e:
            if os.environ.get("SEGKIT_DEBUG"):
                raise
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"segkit: error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("segkit: interrupted", file=sys.stderr)
            return 130

    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("config", help="experiment YAML file")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import this file (or module) first, so the classes it registers can be used")
    return p


def _split_resume(argv: List[str]) -> tuple:
    """Pull ``--resume [PATH]`` out of argv. PATH is optional, so the token after --resume is
    taken as PATH only when it looks like one (an existing file or a .pth/.pt name) and not
    like the first KEY of the overrides."""
    argv = list(argv)
    if "--resume" not in argv:
        return argv, None
    i = argv.index("--resume")
    nxt = argv[i + 1] if i + 1 < len(argv) else None
    if nxt is not None and (os.path.isfile(nxt) or nxt.endswith((".pth", ".pt"))):
        return argv[:i] + argv[i + 2:], nxt
    return argv[:i] + argv[i + 1:], ""


@user_errors
def train_main(argv: Optional[List[str]] = None) -> int:
    argv, resume = _split_resume(sys.argv[1:] if argv is None else argv)
    p = _parser("segkit train", "Train a model from a config.")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help=_OPTS_HELP)
    # Documented here for --help; _split_resume has already taken it out of argv.
    p.add_argument("--resume", nargs="?", metavar="PATH",
                   help="continue the run saved in PATH (default: OUTPUT_DIR/last.pth) with its optimizer, "
                        "schedule, epoch and random state; MODEL.WEIGHTS PATH loads weights only")
    args = p.parse_intermixed_args(argv)  # options may follow the overrides
    from .engine import Trainer, setup

    cfg = setup(args.config, args.opts, args.plugin, training=True)
    if resume == "":
        resume = os.path.join(cfg.OUTPUT_DIR, "last.pth")
    trainer = Trainer(cfg, resume=resume)
    trainer.train()
    if trainer.interrupted:
        from .engine.distributed import get_world_size, is_main_process

        per_node = os.environ.get("LOCAL_WORLD_SIZE", get_world_size())
        launcher = "python" if get_world_size() == 1 else f"torchrun --nproc_per_node {per_node}"
        cmd = " ".join([f"{launcher} tools/train.py", args.config, "--resume", trainer.last_checkpoint or "",
                        *args.opts])
        if is_main_process():  # rank 0 saved the checkpoint; one message, not one per process
            print(f"segkit: stopped by {trainer.interrupted}; saved {trainer.last_checkpoint}. Resume with:\n  {cmd}",
                  file=sys.stderr)
        return 130 if trainer.interrupted == "SIGINT" else 143
    return 0


def format_summary(result: dict) -> str:
    """The human-readable table tools/test.py prints above its JSON line."""
    lines = [f"{result['split']} split: {result['n']} images, checkpoint {result['checkpoint']}"]
    tta = result.get("tta")
    if tta:
        lines.append(f"  test-time augmentation: flip {tta['flip']}, scales {tta['scales']}")
    resolution = result.get("resolution", "network")
    sections = [("", "original" if resolution == "original" else "network")]
    if resolution == "both":
        sections.append(("orig_", "original"))
    for prefix, where in sections:
        size = "INPUT.SIZE" if where == "network" else "each image its own size"
        lines.append(f"  at {where} resolution ({size}):")
        lines.append(f"    {'':<9} mean ± std over images    dataset (micro)")
        for key in ("loss", "dice", "iou", "precision", "recall", "accuracy"):
            if f"{prefix}{key}_mean" not in result:
                continue
            micro = result.get(f"{prefix}{key}_micro")
            micro_text = f"{micro:.4f}" if isinstance(micro, float) else ""
            lines.append(f"    {key:<9} {result[f'{prefix}{key}_mean']:.4f} ± {result[f'{prefix}{key}_std']:.4f}"
                         f"{'':<10}{micro_text}")
        for key in ("dice", "iou"):
            per_class = result.get(f"{prefix}{key}_per_class")
            if per_class:
                lines.append(f"    {key} per class (micro): " + ", ".join(f"{c}: {v:.4f}" for c, v in enumerate(per_class)))
    if result.get("out_dir"):
        lines.append(f"  predictions, per_image.csv and best_worst.png in {os.path.dirname(result['out_dir']['csv'])}")
    return "\n".join(lines)


def _test_overrides(args) -> List[str]:
    """The test options as config overrides, so TEST.* in a config and flags mean one thing."""
    opts = []
    if args.resolution:
        opts += ["TEST.RESOLUTION", args.resolution]
    if args.tta:
        opts += ["TEST.TTA.FLIP", str(args.tta == "flip")]
    if args.tta_scales:
        opts += ["TEST.TTA.SCALES", str([float(s) for s in args.tta_scales])]
    return opts


@user_errors
def test_main(argv: Optional[List[str]] = None) -> int:
    p = _parser("segkit test", "Evaluate a checkpoint; the last stdout line is a JSON summary.")
    p.add_argument("checkpoint", help="a .pth written by training (best.pth or last.pth)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--json-out", metavar="PATH", help="also write the JSON summary to PATH (atomically: a "
                   "reader never sees half a file)")
    p.add_argument("--resolution", choices=["network", "original", "both"],
                   help="score at the network's input size, at each image's original size (logits resized "
                        "back bilinearly; the honest number), or both (original under orig_* keys). "
                        "Default: TEST.RESOLUTION (network)")
    p.add_argument("--tta", choices=["none", "flip"], help="test-time augmentation: average with the "
                   "horizontally flipped image (default: TEST.TTA.FLIP)")
    p.add_argument("--tta-scales", nargs="+", type=float, metavar="S", help="also average over these input "
                   "scales, e.g. 0.75 1 1.25 (default: TEST.TTA.SCALES)")
    p.add_argument("--out-dir", metavar="DIR", help="write masks/, overlays/, per_image.csv (worst first) and "
                   "best_worst.png here")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help=_OPTS_HELP)
    args = p.parse_intermixed_args(argv)
    from .engine import evaluate_checkpoint, setup

    cfg = setup(args.config, list(args.opts) + _test_overrides(args), args.plugin, training=False)
    result = evaluate_checkpoint(cfg, args.checkpoint, args.split, out_dir=args.out_dir)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        sweep.write_json_atomic(args.json_out, result)
    print(format_summary(result))
    print(json.dumps(result), flush=True)
    return 0


@user_errors
def check_data_main(argv: Optional[List[str]] = None) -> int:
    p = _parser("segkit check-data", "Scan a config's dataset and report every bad file at once.")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help=_OPTS_HELP)
    args = p.parse_intermixed_args(argv)
    from .data.check import check_data
    from .engine import setup

    cfg = setup(args.config, args.opts, args.plugin, training=False)
    report = check_data(cfg)
    print(report.format())
    return 0 if report.ok else 1


def _first_sentence(doc: Optional[str], width: int = 100) -> str:
    """The docstring's first sentence on one line, shortened to ``width`` characters."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


@user_errors
def list_main(argv: Optional[List[str]] = None) -> int:
    """Print registered names with one-line descriptions; for backbones with --filter, also the
    matching timm models (usable as ``tu-<name>``). A filter without wildcards matches substrings."""
    from . import data, engine, losses, models, solver  # noqa: F401  (fill the registries)
    from .registry import ALL_REGISTRIES

    p = argparse.ArgumentParser(prog="segkit list", description="List registered components.")
    p.add_argument("registry", nargs="?", choices=sorted(ALL_REGISTRIES), help="one registry (default: all)")
    p.add_argument("--filter", default=None, help="fnmatch pattern, e.g. '*unet*'; plain text matches "
                   "anywhere in the name (with backbones it also lists timm models as tu-<name>)")
    args = p.parse_args(argv)
    pattern = args.filter
    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    for name in [args.registry] if args.registry else sorted(ALL_REGISTRIES):
        reg = ALL_REGISTRIES[name]
        print(f"{name}:")
        for entry in reg.list(filter=pattern):
            print(f"  {entry:<28} {_first_sentence(reg.get(entry).__doc__)}")
        if name == "backbones":
            if pattern:
                import timm

                for model in timm.list_models(pattern):
                    print(f"  {'tu-' + model:<28} timm model '{model}' (features_only encoder)")
            else:
                print(f"  {'tu-<name>':<28} any timm model as an encoder; find names with --filter, e.g. "
                      f"segkit list backbones --filter resnet")
    return 0


# Commands in other modules are named "module:function" and imported only when run, so one
# command's optional dependencies never slow down or break another.
_COMMANDS = {"train": train_main, "test": test_main, "check-data": check_data_main, "list": list_main,
             "sweep": sweep.main, "summarize": summary.main, "infer": "segkit.infer_cli:main",
             "benchmark": "segkit.benchmark:main", "export": "segkit.export.cli:main",
             "ablate": "segkit.experiments.ablation:main"}


def _command(name: str):
    fn = _COMMANDS[name]
    if isinstance(fn, str):
        import importlib

        module, attr = fn.split(":")
        fn = getattr(importlib.import_module(module), attr)
    return fn


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in _COMMANDS:
        print(f"usage: segkit {{{','.join(_COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return _command(argv[0])(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
