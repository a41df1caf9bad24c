r"""Predict masks for images of any size: writes OUT_DIR/masks/<name>.png (labels), OUT_DIR/colour/<name>.png
(the labels in the dataset's colours) and OUT_DIR/overlays/<name>.png.

    segkit infer configs/quickstart.yaml work_dirs/quickstart/best.pth photos/ "more/*.png" one.jpg \
        --out-dir work_dirs/predictions
    segkit infer CONFIG model.onnx photos/ --out-dir preds TEST.THRESHOLD 0.4

INPUTs are files, folders (their image files) or quoted globs; KEY VALUE overrides follow
them. A file that cannot be read or predicted is reported and skipped; the others are still
done, and the exit status is 1 afterwards so scripts notice.

<name> is the input's stem; inputs that share a stem get distinct names (see --out-dir), so
every input has its own mask and the count is true. Every file is written atomically, OUT_DIR
may not touch DATA.ROOT, and files in OUT_DIR that segkit did not write are never replaced.
"""
from __future__ import annotations

import glob
import os
import sys
from typing import List

from .options import (OVERRIDES_HELP, add_config, add_json_out, add_plugin, check_output_file, check_prediction_dir,
                      split_overrides, write_json_out)

HELP = "predict masks and overlays for files, folders or globs of images"
OUT_DIR_HELP = ("where masks/<name>.png and overlays/<name>.png go (each written atomically). <name> is the input's "
                "stem (photos/cat.jpg -> cat); inputs sharing a stem keep their extension (cat.jpg, cat.png) and "
                "the same file name in two folders gets its folders in front (day1__cat.jpg), decided from the "
                "whole input list. DIR may not be, lie inside or hold DATA.ROOT; segkit lists what it writes in "
                "DIR/.segkit-outputs and replaces only those files, so a DIR holding other masks or overlays is "
                "refused before any image is read")


def add_arguments(parser) -> None:
    add_config(parser, help="experiment YAML file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="a .pth written by training (its model settings, MODEL.* and "
                        "INPUT.SIZE/MEAN/STD/TEST_TRANSFORMS, must match the config's), or an exported .onnx model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=f"image files, folders or globs (quote globs); then, optionally, {OVERRIDES_HELP} "
                             "(they start at the first word that reads as a config key and is not a path)")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help=OUT_DIR_HELP)
    add_plugin(parser)
    add_json_out(parser)
    parser.add_argument("--tta", choices=["none", "flip"], help="average with the horizontally flipped image "
                        "(default: TEST.TTA.FLIP)")
    parser.add_argument("--tta-scales", nargs="+", type=float, metavar="S", help="also average over these scales")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 … (default: the config's DEVICE)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto: as the config's SOLVER.AMP (by default bf16 on CUDA and on CPUs with native "
                             "bf16, else fp32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def expand_inputs(inputs: List[str]) -> List[str]:
    """Files named, image files (by extension) inside folders named, and glob matches; sorted per
    input, duplicates dropped. Something that matches nothing is an error naming it."""
    from ..utils.images import IMAGE_EXTENSIONS

    files: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(item, f)))
        elif os.path.isfile(item):
            found = [item]
        else:
            found = sorted(f for f in glob.glob(item, recursive=True) if os.path.isfile(f))
        if not found:
            raise FileNotFoundError(f"input '{item}' is not a file, a folder with images "
                                    f"({', '.join(IMAGE_EXTENSIONS)}) or a glob that matches files")
        files += found
    return list(dict.fromkeys(files))


def run(args) -> int:
    from tqdm import tqdm

    from ..config import load_config
    from ..utils.logging import setup_logging
    from ..inference import Predictor, to_rgb
    from ..plugins import import_plugins
    from ..visualize import PredictionWriter, output_names

    setup_logging()
    inputs, opts = split_overrides(args.inputs)
    if not inputs:
        raise ValueError("segkit infer: no INPUT given before the KEY VALUE overrides")
    import_plugins(args.plugin)
    cfg = load_config(args.config, opts)
    files = expand_inputs(inputs)
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs=[args.config, args.checkpoint, *files])
    check_prediction_dir("--out-dir", args.out_dir, cfg.DATA.ROOT)
    names = output_names(files)
    predictor = Predictor(cfg, args.checkpoint, device=args.device, precision=args.precision,
                          tta_flip=None if args.tta is None else args.tta == "flip", tta_scales=args.tta_scales)
    writer = PredictionWriter(args.out_dir, predictor.num_classes, data_root=cfg.DATA.ROOT, palette=predictor.palette)
    failed, written = [], 0
    for path, name in tqdm(list(zip(files, names)), desc="infer", unit="img", disable=args.no_progress,
                           file=sys.stderr):
        try:
            image = to_rgb(path)
            writer.write(name, image, predictor.predict(image).mask)
            written += 1
        except Exception as e:  # noqa: BLE001  one bad file must not stop the rest
            failed.append(path)
            tqdm.write(f"segkit infer: skipped '{path}': {e}", file=sys.stderr)
    print(f"segkit infer: wrote {written} mask(s) and overlay(s) to {args.out_dir}"
          + (f"; {len(failed)} file(s) failed: {', '.join(failed)}" if failed else ""))
    write_json_out(args.json_out, {"out_dir": args.out_dir, "written": written, "failed": failed})
    return 1 if failed else 0
