"""Evaluate a checkpoint on a split; the last stdout line is the result as JSON.

    segkit test configs/resnet34_unet_aug_cosine.yaml work_dirs/r34/best.pth DATA.ROOT /data/pets
    segkit test CONFIG CHECKPOINT --resolution both --tta flip --out-dir work_dirs/r34/test

Prints mean ± std over images (and the dataset-wide micro value) of the loss, Dice, IoU,
precision, recall and accuracy.
"""
from __future__ import annotations

import os
from typing import List

from .jsonout import to_json
from .options import (add_config, add_json_out, add_overrides, add_plugin, check_output_file, check_prediction_dir,
                      load_setup, write_json_out)

HELP = "evaluate a checkpoint on the test (or val, train) split"
OUT_DIR_HELP = ("write masks/<name>.png, overlays/<name>.png, per_image.csv (worst first) and best_worst.png "
                "here. DIR may not be, lie inside or hold DATA.ROOT; segkit lists what it writes in "
                "DIR/.segkit-outputs and replaces only those files (a rerun into the same DIR updates them), so "
                "a DIR holding other masks, overlays or reports is refused before the evaluation starts")


def add_arguments(parser) -> None:
    add_config(parser)
    parser.add_argument("checkpoint", help="a .pth written by training (best.pth or last.pth). The model settings "
                        "it was trained with (MODEL.*, INPUT.SIZE/MEAN/STD/TEST_TRANSFORMS) must match the config's; "
                        "a difference is refused, naming each key (use the run's own config.yaml, or override)")
    add_overrides(parser)
    add_plugin(parser)
    add_json_out(parser)
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--resolution", choices=["network", "original", "both"],
                        help="score at the network's input size, at each image's original size (logits resized "
                             "back bilinearly; the honest number), or both (original under orig_* keys). "
                             "Default: TEST.RESOLUTION (network)")
    parser.add_argument("--tta", choices=["none", "flip"], help="test-time augmentation: average with the "
                        "horizontally flipped image (default: TEST.TTA.FLIP)")
    parser.add_argument("--tta-scales", nargs="+", type=float, metavar="S", help="also average over these "
                        "input scales, e.g. 0.75 1 1.25 (default: TEST.TTA.SCALES)")
    parser.add_argument("--out-dir", metavar="DIR", help=OUT_DIR_HELP)


def test_overrides(args) -> List[str]:
    """The test options as config overrides, so TEST.* in a config and flags mean one thing."""
    opts = []
    if args.resolution:
        opts += ["TEST.RESOLUTION", args.resolution]
    if args.tta:
        opts += ["TEST.TTA.FLIP", str(args.tta == "flip")]
    if args.tta_scales:
        opts += ["TEST.TTA.SCALES", str([float(s) for s in args.tta_scales])]
    return opts


def run(args) -> int:
    from ..engine import evaluate_checkpoint

    cfg = load_setup(args, training=False, extra_opts=test_overrides(args))
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs=[args.config, args.checkpoint])
    check_prediction_dir("--out-dir", args.out_dir, cfg.DATA.ROOT)
    result = evaluate_checkpoint(cfg, args.checkpoint, args.split, out_dir=args.out_dir)
    write_json_out(args.json_out, result)
    print(format_summary(result))
    print(to_json(result), flush=True)  # NaN metrics as null: the line stays strict JSON
    return 0


def format_summary(result: dict) -> str:
    """The human-readable table printed above the JSON line."""
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
        micro_head = "dataset (micro)" if f"{prefix}dice_micro" in result else ""
        lines.append(f"    {'':<9} mean ± std over images    {micro_head}".rstrip())
        for key in ("loss", "dice", "iou", "precision", "recall", "accuracy"):
            if f"{prefix}{key}_mean" not in result:
                continue
            micro = result.get(f"{prefix}{key}_micro")
            micro_text = f"{micro:.4f}" if isinstance(micro, float) else ""
            lines.append(f"    {key:<9} {result[f'{prefix}{key}_mean']:.4f} ± {result[f'{prefix}{key}_std']:.4f}"
                         f"{'':<10}{micro_text}")
        lines += class_table(result, prefix)
    if result.get("out_dir"):
        lines.append(f"  predictions, per_image.csv, best_worst.png, per_class.csv and confusion_matrix.csv/.png in "
                     f"{os.path.dirname(result['out_dir']['csv'])}")
    return "\n".join(lines)


def _cell(value) -> str:
    return "     -" if not isinstance(value, float) or value != value else f"{value:6.4f}"


def class_table(result: dict, prefix: str = "") -> List[str]:
    """mmseg's summary line (aAcc, mIoU, mAcc, mDice) and the per-class table, classes by name
    ("-": the class is in neither truth nor prediction, or, for Acc, not in the truth)."""
    rows = result.get(f"{prefix}per_class")
    if not rows:
        return []
    summary = "  ".join(f"{k} {result[prefix + k]:.4f}" for k in ("aAcc", "mIoU", "mAcc", "mDice")
                        if isinstance(result.get(prefix + k), float) and result[prefix + k] == result[prefix + k])
    width = max(8, *(len(str(r["class"])) for r in rows))
    lines = [f"    per class ({summary}):", f"    {'class':<{width}}  {'IoU':>6}  {'Dice':>6}  {'Acc':>6}  "
             f"{'pixels':>6}"]
    total = sum(int(r["gt_pixels"]) for r in rows) or 1
    for r in rows:
        share = f"{100 * int(r['gt_pixels']) / total:5.1f}%"
        lines.append(f"    {str(r['class']):<{width}}  {_cell(r['IoU'])}  {_cell(r['Dice'])}  {_cell(r['Acc'])}  {share}")
    return lines
