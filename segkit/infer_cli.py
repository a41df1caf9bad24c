"""``segkit infer`` / tools/infer.py: masks and overlays for a file, a folder or a glob of images.

A file that cannot be read or predicted is reported on stderr and skipped; the others are
still done, and the exit status is 1 afterwards so scripts notice.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import List, Optional

from .cli import user_errors
from .data.oxford_pet import IMAGE_EXTENSIONS  # what the datasets read as images

__all__ = ["main", "expand_inputs"]


def expand_inputs(inputs: List[str]) -> List[str]:
    """Files named, image files (by extension) inside folders named, and glob matches; sorted per
    input, duplicates dropped. Something that matches nothing is an error naming it."""
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
            raise FileNotFoundError(f"input '{item}' is not a file, a folder with images ({', '.join(IMAGE_EXTENSIONS)}) "
                                    "or a glob that matches files")
        files += found
    return list(dict.fromkeys(files))


@user_errors
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="segkit infer", description="Predict masks for images of any size; "
                                "writes OUT_DIR/masks/<stem>.png and OUT_DIR/overlays/<stem>.png.")
    p.add_argument("config", help="experiment YAML file the checkpoint was trained with")
    p.add_argument("checkpoint", help="a .pth written by training, or an exported .onnx model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs (quote globs)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="where masks/ and overlays/ go")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import this file (or module) first, so the classes it registers can be used")
    p.add_argument("--tta", choices=["none", "flip"], help="average with the horizontally flipped image "
                   "(default: TEST.TTA.FLIP)")
    p.add_argument("--tta-scales", nargs="+", type=float, metavar="S", help="also average over these scales")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 … (default: the config's DEVICE)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: as the config's SOLVER.AMP (by default bf16 on CUDA and on CPUs with native "
                        "bf16, else fp32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from tqdm import tqdm

    from .engine.launch import setup_logging
    from .inference import Predictor, to_rgb
    from .plugins import import_plugins
    from .visualize import PredictionWriter

    setup_logging()
    import_plugins(args.plugin)
    files = expand_inputs(args.inputs)
    predictor = Predictor(args.config, args.checkpoint, device=args.device, precision=args.precision,
                          tta_flip=None if args.tta is None else args.tta == "flip", tta_scales=args.tta_scales)
    writer = PredictionWriter(args.out_dir, predictor.num_classes)
    failed = []
    for path in tqdm(files, desc="infer", unit="img", disable=args.no_progress, file=sys.stderr):
        try:
            image = to_rgb(path)
            result = predictor.predict(image)
            stem = os.path.splitext(os.path.basename(path))[0]
            writer.write(stem, image, result.mask)
        except Exception as e:  # noqa: BLE001  one bad file must not stop the rest
            failed.append(path)
            tqdm.write(f"segkit infer: skipped '{path}': {e}", file=sys.stderr)
    done = len(files) - len(failed)
    print(f"segkit infer: wrote {done} mask(s) and overlay(s) to {args.out_dir}"
          + (f"; {len(failed)} file(s) failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
