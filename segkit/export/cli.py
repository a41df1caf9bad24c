"""``segkit export CONFIG CHECKPOINT --format onnx|torchscript``: write the file, then prove it.

The exported file is run next to the PyTorch model on a random batch and, when the config's
dataset is readable, on a real image; the largest logit difference is printed and must stay
within ``--tolerance``. With ``--dynamic`` the check repeats at a second batch and size that
is not a multiple of the encoder's stride, so the padding path is exercised too.
"""
from __future__ import annotations

import json
import logging
from typing import List, Optional

import torch

from ..cli import _OPTS_HELP, user_errors
from .exporters import EXPORTERS, FORMATS, default_output, export_model, load_exported, max_abs_diff

__all__ = ["main"]

logger = logging.getLogger("segkit")


def _real_images(cfg, size: int) -> Optional[torch.Tensor]:
    """One test-split image as the model sees it, or None when the dataset is not readable."""
    from ..data import build_dataloader

    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATA.NUM_WORKERS, cfg.TEST.BATCH_SIZE, cfg.INPUT.SIZE = 0, 1, size
    for split in ("test", "val"):
        try:
            return next(iter(build_dataloader(cfg, split)))["image"]
        except Exception as e:  # no DATA.ROOT, an empty split: the random check still runs
            logger.info("export: no real %s image to check with (%s)", split, e)
    return None


def _second_size(size: int, stride: int) -> int:
    """A size different from ``size`` that needs padding (not a multiple of the stride)."""
    other = size + max(stride, 8) + 3
    return other + 1 if stride > 1 and other % stride == 0 else other


@user_errors
def main(argv: Optional[List[str]] = None) -> int:
    from ..cli import _parser

    p = _parser("segkit export", "Export a checkpoint to ONNX or TorchScript and check it against PyTorch.")
    p.add_argument("checkpoint", help="a .pth written by training")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (run with onnxruntime) or torchscript")
    p.add_argument("--dynamic", action="store_true",
                   help="accept any batch size and image size (checked at a second size as well)")
    p.add_argument("--output", metavar="PATH", help="where to write (default: the checkpoint's path with "
                   ".onnx or .torchscript)")
    p.add_argument("--size", type=int, default=None, help="example image size (default INPUT.SIZE)")
    p.add_argument("--exporter", default="torchscript", choices=EXPORTERS,
                   help="ONNX only: torch's TorchScript-based exporter (default, fast) or the dynamo one")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |logit difference| (fp32)")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help=_OPTS_HELP)
    args = p.parse_intermixed_args(argv)
    from ..engine import prepare_model, setup

    cfg = setup(args.config, args.opts, args.plugin, training=False)
    size = int(args.size or cfg.INPUT.SIZE)
    if size <= 0:
        raise ValueError(f"--size must be a positive number of pixels, got {size}")
    model = prepare_model(cfg, torch.device("cpu"), weights=args.checkpoint).float().eval()
    model.to(memory_format=torch.contiguous_format)
    output = args.output or default_output(args.checkpoint, args.format)
    gen = torch.Generator().manual_seed(int(cfg.SEED))
    example = torch.randn(1, cfg.MODEL.IN_CHANNELS, size, size, generator=gen)
    export_model(model, args.format, output, example, dynamic=args.dynamic, exporter=args.exporter,
                 opset=args.opset)
    exported = load_exported(output)

    checks = [("random", example)]
    real = _real_images(cfg, size)
    if real is not None:
        checks.append(("real", real))
    if args.dynamic:
        other = _second_size(size, int(getattr(model, "output_stride", 1) or 1))
        checks.append((f"random batch 2 at {other}", torch.randn(2, cfg.MODEL.IN_CHANNELS, other, other, generator=gen)))
        if real is not None:
            checks.append((f"real at {other}", _real_images(cfg, other)))
    result = {"format": args.format, "output": output, "dynamic": args.dynamic, "size": size, "checks": {}}
    for name, images in checks:
        result["checks"][name] = max_abs_diff(model, exported, images)
    worst = max(result["checks"].values())
    result["max_abs_diff"], result["ok"] = worst, worst <= args.tolerance
    for name, diff in result["checks"].items():
        print(f"  {name:<24} {tuple(dict(checks)[name].shape)!s:<20} max |logit diff| {diff:.3g}")
    verdict = "matches" if result["ok"] else f"DIFFERS from (tolerance {args.tolerance:g})"
    print(f"wrote {output}: {args.format} {verdict} PyTorch, max |logit diff| {worst:.3g}")
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1
