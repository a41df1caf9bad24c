"""Paired ablation: segkit against the plain loop, one factor moved at a time, same seeds.

Every arm trains from the same config and seed (same split, same initial weights) and is
scored by per-image test Dice on two tasks:

* ``sample``: the dataset's own trainval → test split;
* ``cross``: trained on one breed's trainval images, tested on every image of another breed
  (both directions, averaged): a generalisation signal that needs no held-out breed.

Results go to ``<output-root>/results.jsonl``, one line per (arm, seed, task); a rerun skips
what is there, so an interrupted ablation continues. The table printed at the end gives each
arm's mean and spread (max - min over seeds) and its difference from the reference arm.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections import defaultdict
from typing import Callable, ContextManager, Dict, List, Optional, Sequence

import numpy as np

from .plain_loop import PlainOptions, train_plain_loop

__all__ = ["Arm", "ARMS", "breed_roots", "run_arm", "per_seed", "summarize", "paired_summary", "known_arms",
           "run_ablation", "load_results"]

logger = logging.getLogger("segkit")

# Hooks whose only effect is output a person reads; off in ablation runs (no effect on the model).
_QUIET_HOOKS = ("progress_bar", "tensorboard")


@dataclasses.dataclass
class Arm:
    """One side of the comparison: segkit with config overrides, or the plain loop with options."""

    name: str
    help: str
    overrides: Sequence[str] = ()
    plain: Optional[PlainOptions] = None
    config: Optional[str] = None     # a config of its own instead of the shared one (no shared overrides)
    patch: Optional[Callable[[], ContextManager]] = None  # segkit behaviour swapped for the run


def _lab_recipe_with(affine=None, **extra) -> str:
    """The lab augmentation list with ``extra`` keys added to its geometric steps (and ``affine``
    to its Affine step), as an override."""
    from ..data.transforms import LAB_RECIPE

    steps = [{**node, **extra} if node["NAME"] in ("Rotate", "Affine") else dict(node) for node in LAB_RECIPE]
    return repr([{**node, **(affine or {})} if node["NAME"] == "Affine" else node for node in steps])


@contextlib.contextmanager
def _shared_step_seed():
    """segkit as it was before ``seed_transforms``: albumentations' own ``set_random_seed``,
    which hands one seed to every step of the pipeline. Loader workers are forked inside the
    context, so they inherit it."""
    from ..data import build, transforms

    def shared(transform, seed):
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(seed)

    saved = transforms.seed_transforms, build.seed_transforms
    transforms.seed_transforms = build.seed_transforms = shared
    try:
        yield
    finally:
        transforms.seed_transforms, build.seed_transforms = saved


ARMS: Dict[str, Arm] = {a.name: a for a in [
    Arm("plain", "hand-written loop: PIL resize, torchvision lab augmentation, fp32, last epoch",
        plain=PlainOptions()),
    Arm("plain_bf16", "plain loop + bf16 autocast and channels_last", plain=PlainOptions(bf16=True)),
    Arm("plain_shared_draw", "plain loop, one random draw deciding every augmentation step",
        plain=PlainOptions(shared_draw=True)),
    Arm("plain_ignore_border", "plain loop, rotation/affine borders ignored in the loss",
        plain=PlainOptions(ignore_border=True)),
    Arm("plain_draft", "plain loop, JPEG draft decoding before PIL's resize", plain=PlainOptions(jpeg_draft=True)),
    Arm("plain_albumentations", "plain loop with segkit's albumentations steps (the config's "
        "INPUT.TRAIN_TRANSFORMS), borders still background", plain=PlainOptions(config_augment=True)),
    Arm("segkit", "segkit as configured"),
    Arm("segkit_shared_seed", "segkit seeding every augmentation step with one seed (before the fix)",
        patch=_shared_step_seed),
    Arm("segkit_fp32", "segkit in fp32 (SOLVER.AMP.ENABLED False)", ("SOLVER.AMP.ENABLED", "False")),
    Arm("segkit_nchw", "segkit without channels_last", ("MODEL.CHANNELS_LAST", "False")),
    Arm("segkit_no_draft", "segkit without JPEG draft decoding", ("DATA.JPEG_DRAFT", "False")),
    Arm("segkit_unfused", "segkit with torch's unfused Adam", ("SOLVER.OPTIMIZER.FUSED", "False")),
    Arm("segkit_fill_bg", "segkit, rotation/affine mask borders filled with background, not ignored",
        ("INPUT.TRAIN_TRANSFORMS", _lab_recipe_with(FILL_MASK=0))),
    # The report's code (not its prose): torchvision's default nearest-neighbour resampling and
    # one fixed affine (+5 px in x and y, scale 1.05, 2 degrees of x-shear), borders background.
    Arm("segkit_lab_code_aug", "segkit with the augmentation as the lab's code does it: nearest-neighbour "
        "rotation, a fixed affine, borders background", ("INPUT.TRAIN_TRANSFORMS", _lab_recipe_with(
            FILL_MASK=0, INTERPOLATION=0, affine={"TRANSLATE_PX": 5, "SCALE": 1.05, "SHEAR": {"x": 2, "y": 0}}))),
]}


def _breed(name: str) -> str:
    return name.rsplit("_", 1)[0]


def _read_lines(path: str) -> List[str]:
    with open(path, encoding="utf-8-sig") as f:
        return [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("#")]


def breed_roots(root: str, out_dir: str) -> Dict[str, str]:
    """Oxford-layout roots for every ordered pair of breeds A, B in ``root``: train (and val)
    on A's trainval images, test on every image of B. Images and trimaps are symlinked, the
    list files written anew. Returns {"A>B": root}."""
    ann = os.path.join(root, "annotations")
    trainval = _read_lines(os.path.join(ann, "trainval.txt"))
    everything = trainval + _read_lines(os.path.join(ann, "test.txt"))
    breeds = sorted({_breed(ln.split()[0]) for ln in everything})
    roots = {}
    for a in breeds:
        for b in breeds:
            if a == b:
                continue
            dest = os.path.join(out_dir, f"{a}_to_{b}")
            os.makedirs(os.path.join(dest, "annotations"), exist_ok=True)
            for link, target in (("images", os.path.join(root, "images")),
                                 (os.path.join("annotations", "trimaps"), os.path.join(ann, "trimaps"))):
                path = os.path.join(dest, link)
                if not os.path.islink(path):
                    os.symlink(os.path.abspath(target), path)
            for list_name, lines in (("trainval.txt", [ln for ln in trainval if _breed(ln.split()[0]) == a]),
                                     ("test.txt", [ln for ln in everything if _breed(ln.split()[0]) == b])):
                with open(os.path.join(dest, "annotations", list_name), "w", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
            roots[f"{a}>{b}"] = dest
    return roots


def _segkit_run(cfg) -> Dict:
    """Train with segkit's Trainer; test Dice of best.pth and last.pth."""
    from ..config import dump_config
    from ..engine import Trainer, evaluate_checkpoint

    cfg.defrost()
    cfg.HOOKS = [h for h in cfg.HOOKS if h["NAME"] not in _QUIET_HOOKS]
    cfg.freeze()
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    dump_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
    start = time.perf_counter()
    trainer = Trainer(cfg)
    trainer.train()
    result = {"wall_s": time.perf_counter() - start}
    for tag in ("best", "last"):
        out = evaluate_checkpoint(cfg, os.path.join(cfg.OUTPUT_DIR, f"{tag}.pth"), "test")
        result[f"test_dice_{tag}"] = out["dice_mean"]
    return result


def run_arm(arm: Arm, config: str, opts: Sequence[str], seed: int, data_root: str, output_dir: str) -> Dict:
    """One training run of ``arm`` and its test Dice (last and best-on-val epoch)."""
    from ..config import load_config

    base = [] if arm.config else list(opts)
    cfg = load_config(arm.config or config, [*base, *arm.overrides, "SEED", str(seed), "DATA.ROOT", data_root,
                                             "OUTPUT_DIR", output_dir])
    if arm.plain is not None:
        return train_plain_loop(cfg, arm.plain)
    with arm.patch() if arm.patch else contextlib.nullcontext():
        return _segkit_run(cfg)


def load_results(path: str) -> List[Dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def per_seed(records: List[Dict], pick: str = "best") -> Dict[str, Dict[str, Dict[int, float]]]:
    """arm -> task ("sample" or "cross") -> seed -> test Dice of checkpoint ``pick`` ("best" or
    "last"). A seed's cross-breed value is the mean of its directions, counted once it has
    every direction the records hold (a half-finished seed would skew the mean)."""
    raw = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for r in records:
        raw[r["arm"]]["sample" if r["task"] == "sample" else "cross"][r["seed"]][r["task"]] = r[f"test_dice_{pick}"]
    directions = {r["task"] for r in records if r["task"] != "sample"}
    return {arm: {task: {seed: float(np.mean(list(v.values()))) for seed, v in seeds.items()
                         if task == "sample" or set(v) == directions}
                  for task, seeds in tasks.items()}
            for arm, tasks in raw.items()}


def summarize(records: List[Dict], reference: str = "plain", pick: str = "best",
              arms: Optional[Sequence[str]] = None) -> str:
    """A markdown table: per arm, test and cross-breed Dice as mean ± half the range over seeds,
    the difference of means from ``reference``, and the median wall time of the test-task
    runs. ``pick``: which checkpoint of each run ("best" or "last"); ``arms``: rows to show."""
    per = per_seed(records, pick)
    wall = defaultdict(list)
    for r in records:
        if r["task"] == "sample":
            wall[r["arm"]].append(r["wall_s"])

    def stats(arm, task):
        values = list(per.get(arm, {}).get(task, {}).values())
        if not values:
            return "–", None
        return f"{np.mean(values):.4f} ± {np.ptp(values) / 2:.4f} (n={len(values)})", float(np.mean(values))

    lines = [f"checkpoint: {pick}.pth; mean over seeds ± half the range; Δ: difference of means from '{reference}'",
             "| arm | test Dice | Δ test | cross-breed Dice | Δ cross | wall s (test task, median) |",
             "|---|---|---|---|---|---|"]
    ref = {t: stats(reference, t)[1] for t in ("sample", "cross")}
    shown = [a for a in (arms or sorted(per, key=lambda a: (a != reference, a))) if a in per]
    for arm in shown:
        row = [arm]
        for task in ("sample", "cross"):
            text, mean = stats(arm, task)
            delta = f"{mean - ref[task]:+.4f}" if mean is not None and ref[task] is not None else "–"
            row += [text, delta]
        row.append(f"{np.median(wall[arm]):.0f}" if wall[arm] else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def paired_summary(records: List[Dict], reference: str = "plain", pick: str = "best",
                   reference_pick: Optional[str] = None, arms: Optional[Sequence[str]] = None) -> str:
    """A markdown table of differences paired by seed: per arm and task, the arm's Dice minus the
    reference's on each seed both ran, then their mean ± standard error and the worst seed.
    Pairing removes what a seed does to both sides (split, initial weights), so it resolves
    smaller effects than the difference of means. ``reference_pick``: the reference's
    checkpoint, when it differs from ``pick`` (e.g. segkit's best.pth against the plain loop's
    last epoch)."""
    same_checkpoint = (reference_pick or pick) == pick  # else the reference's own row compares checkpoints
    arm_values = per_seed(records, pick)
    ref_values = (arm_values if same_checkpoint else per_seed(records, reference_pick)).get(reference, {})

    def paired(arm, task):
        mine, theirs = arm_values[arm].get(task, {}), ref_values.get(task, {})
        diffs = [mine[s] - theirs[s] for s in sorted(mine) if s in theirs]
        if not diffs:
            return "–"
        se = f" ± {np.std(diffs, ddof=1) / np.sqrt(len(diffs)):.4f}" if len(diffs) > 1 else ""
        return f"{np.mean(diffs):+.4f}{se} (n={len(diffs)}, worst {min(diffs):+.4f})"

    lines = [f"paired by seed: {pick}.pth minus '{reference}' {reference_pick or pick}.pth; "
             "mean ± standard error, worst seed",
             "| arm | Δ test Dice | Δ cross-breed Dice |", "|---|---|---|"]
    shown = [a for a in (arms or sorted(arm_values)) if a in arm_values and not (a == reference and same_checkpoint)]
    lines += [f"| {arm} | {paired(arm, 'sample')} | {paired(arm, 'cross')} |" for arm in shown]
    return "\n".join(lines)


def known_arms(arm_configs: Sequence[str] = ()) -> Dict[str, Arm]:
    """The built-in arms plus one per ``NAME=CONFIG`` (a segkit arm trained from CONFIG as it stands)."""
    arms = dict(ARMS)
    for spec in arm_configs:
        name, sep, path = spec.partition("=")
        if not sep or not os.path.isfile(path):
            raise ValueError(f"--arm-config '{spec}': expected NAME=CONFIG with an existing file")
        arms[name] = Arm(name, f"segkit trained from {path}", config=path)
    return arms


def run_ablation(config: str, opts: Sequence[str], arm_names: Sequence[str], arms: Dict[str, Arm],
                 seeds: Sequence[int], tasks: Sequence[str], data_root: str, output_root: str,
                 label: str = "") -> str:
    """Train every (seed, arm, task) not yet in ``output_root/results.jsonl``, appending one line each;
    returns that file's path. A killed ablation resumes where it stopped."""
    results_path = os.path.join(output_root, "results.jsonl")
    unknown = [a for a in arm_names if a not in arms]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; known: {', '.join(arms)}")
    if not os.path.isdir(data_root):
        raise ValueError(f"--data-root '{data_root}' is not a folder; expected the Oxford-IIIT Pet layout "
                         "(or set SEGKIT_PET_ROOT)")
    os.makedirs(output_root, exist_ok=True)
    roots = {}
    if "sample" in tasks:
        roots["sample"] = data_root
    if "cross" in tasks:
        roots.update({f"cross:{k}": v for k, v in breed_roots(data_root, os.path.join(output_root, "roots")).items()})
    done = {(r["arm"], r["seed"], r["task"]) for r in load_results(results_path)}
    for seed in seeds:
        for name in arm_names:
            tag = name + (f"@{label}" if label else "")
            for task, root in roots.items():
                if (tag, seed, task) in done:
                    continue
                out = os.path.join(output_root, "runs", tag, task.replace(":", "_").replace(">", "_to_"), f"seed{seed}")
                logger.info("ablation: %s, seed %d, %s", tag, seed, task)
                result = run_arm(arms[name], config, opts, seed, root, out)
                record = {"arm": tag, "seed": seed, "task": task, **result}
                with open(results_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                logger.info("ablation result: %s", json.dumps(record))
    return results_path
