"""Export a checkpoint to ONNX or TorchScript, then check the file against PyTorch.

    segkit export quickstart work_dirs/quickstart/best.pth --format onnx --dynamic
    segkit export quickstart work_dirs/quickstart/best.pth --format onnx --quantize int8

--quantize int8 writes a static INT8 ONNX model (onnxruntime's QDQ quantization, weights per
channel, activations calibrated on --calib-images training images) that runs 2-3x faster on
CPUs with VNNI. It is scored next to the fp32 export on the val split (Dice of both, the drop,
the share of pixels that agree) and written only when the drop is at most --max-dice-drop;
otherwise the command exits 1 and writes nothing. Serve it like any .onnx: segkit test,
segkit infer and Predictor take it.

The exported file runs next to the PyTorch model on a random batch and, when the config's
dataset is readable, on a real image; the largest logit difference is printed and must stay
within --tolerance (exit 1 otherwise). With --dynamic the check repeats at a second batch
and size that is not a multiple of the encoder's stride. The last stdout line is JSON.
"""
from __future__ import annotations

import os

from .jsonout import to_json
from .options import add_config, add_json_out, add_overrides, add_plugin, check_output_file, load_setup, write_json_out

HELP = "export a checkpoint to ONNX or TorchScript and check it against PyTorch"
# segkit.export.FORMATS and EXPORTERS, spelt out so that building the parser (every command's
# start, `segkit --help`) does not import torch; tests/test_cli.py keeps the two in step.
FORMATS = ("onnx", "torchscript")
EXPORTERS = ("torchscript", "dynamo")
# segkit.export.quantize's names, spelt out for the same reason.
CALIBRATION_METHODS = ("entropy", "minmax", "percentile")
CALIBRATION_SPLITS = ("train", "val")


def add_arguments(parser) -> None:
    add_config(parser)
    parser.add_argument("checkpoint", help="a .pth written by training; its model settings (MODEL.*, "
                        "INPUT.SIZE/MEAN/STD/TEST_TRANSFORMS) must match the config's")
    add_overrides(parser)
    add_plugin(parser)
    add_json_out(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (run with onnxruntime) or torchscript")
    parser.add_argument("--dynamic", action="store_true",
                        help="accept any batch size and image size (checked at a second size as well)")
    parser.add_argument("--output", metavar="PATH", help="where to write (default: the checkpoint's path with "
                        ".onnx or .torchscript). Checked before the export: PATH may not be a folder, lie under "
                        "a file or inside DATA.ROOT, or be the checkpoint or config itself")
    parser.add_argument("--size", type=int, default=None, help="example image size (default INPUT.SIZE)")
    parser.add_argument("--exporter", default="torchscript", choices=EXPORTERS,
                        help="ONNX only: torch's TorchScript-based exporter (default, fast) or the dynamo one")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |logit difference| (fp32)")
    int8 = parser.add_argument_group("INT8 (with --format onnx --quantize int8)")
    int8.add_argument("--quantize", choices=["int8"], help="static post-training INT8 quantization (onnxruntime, "
                      "QDQ), of an export that takes any batch and size (--dynamic, --size and --tolerance do "
                      "not apply: the Dice check replaces the logit check); default output: the checkpoint's "
                      "path with .int8.onnx")
    int8.add_argument("--calib-images", type=int, default=64, metavar="N",
                      help="images calibrating the activation ranges (default 64)")
    int8.add_argument("--calib-split", default="train", metavar="SPLIT",
                      help=f"where they come from: {' or '.join(CALIBRATION_SPLITS)} (default train; never test)")
    int8.add_argument("--calib-method", default="minmax", choices=CALIBRATION_METHODS,
                      help="how ranges are set from the calibration activations (default minmax)")
    int8.add_argument("--max-dice-drop", type=float, default=0.01, metavar="D",
                      help="refuse the INT8 model (exit 1, nothing written) when its Dice is more than D below "
                           "the fp32 model's (default 0.01)")
    int8.add_argument("--eval-split", default="val", metavar="SPLIT",
                      help="split the two models are scored on (default val; not test)")
    int8.add_argument("--keep-float", action="append", default=[], metavar="NODE",
                      help="leave this ONNX node in float (repeatable); without it a failing model is retried "
                           "with the first and last convolution in float")


def run(args) -> int:
    from ..engine.compat import check_checkpoint_config
    from ..export.exporters import default_output

    if args.quantize and args.format != "onnx":
        raise ValueError(f"--quantize int8 makes an ONNX model; use it with --format onnx, not {args.format}")
    cfg = load_setup(args, training=False)
    inputs = [args.config, args.checkpoint]
    default = (os.path.splitext(args.checkpoint)[0] + ".int8.onnx" if args.quantize
               else default_output(args.checkpoint, args.format))
    output = args.output or default
    check_output_file("--output", output, cfg.DATA.ROOT, inputs)
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs)
    check_checkpoint_config(cfg, args.checkpoint)
    result = _quantize(args, cfg, output) if args.quantize else _export(args, cfg, output)
    write_json_out(args.json_out, result)
    print(to_json(result), flush=True)
    return 0 if result["ok"] else 1


def _export(args, cfg, output: str) -> dict:
    from ..export import export_and_check

    result = export_and_check(cfg, args.checkpoint, args.format, output=output, size=args.size,
                              dynamic=args.dynamic, exporter=args.exporter, opset=args.opset,
                              tolerance=args.tolerance)
    for name, diff in result["checks"].items():
        print(f"  {name:<24} {str(tuple(result['shapes'][name])):<20} max |logit diff| {diff:.3g}")
    verdict = "matches" if result["ok"] else f"DIFFERS from (tolerance {args.tolerance:g})"
    print(f"wrote {result['output']}: {args.format} {verdict} PyTorch, max |logit diff| {result['max_abs_diff']:.3g}")
    return result


def _quantize(args, cfg, output: str) -> dict:
    from ..export.quantize import quantize_checkpoint

    result = quantize_checkpoint(cfg, args.checkpoint, output, calib_images=args.calib_images,
                                 calib_split=args.calib_split, method=args.calib_method,
                                 max_dice_drop=args.max_dice_drop, eval_split=args.eval_split,
                                 keep_float=args.keep_float, opset=args.opset)
    print(f"{args.eval_split} Dice ({result['eval_images']} images): fp32 {result['fp32_dice']:.4f}, "
          f"int8 {result['int8_dice']:.4f} (drop {result['dice_drop']:+.4f}); masks agree on "
          f"{100 * result['mask_agreement']:.2f} % of pixels; kept in float: "
          f"{', '.join(result['kept_float']) or 'none'}")
    if result["ok"]:
        print(f"wrote {output} ({result['size_mb']:.1f} MB, calibrated on {result['calib_images']} "
              f"{result['calib_split']} images, {result['calib_method']})")
    else:
        print(f"not written: the Dice drop {result['dice_drop']:.4f} exceeds --max-dice-drop {args.max_dice_drop} "
              f"(try --calib-method entropy or percentile, more --calib-images, or --keep-float NODE)")
    return result
