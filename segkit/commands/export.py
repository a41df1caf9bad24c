"""Export a checkpoint to ONNX or TorchScript, then check the file against PyTorch.

    segkit export configs/quickstart.yaml work_dirs/quickstart/best.pth --format onnx --dynamic

The exported file runs next to the PyTorch model on a random batch and, when the config's
dataset is readable, on a real image; the largest logit difference is printed and must stay
within --tolerance (exit 1 otherwise). With --dynamic the check repeats at a second batch
and size that is not a multiple of the encoder's stride. The last stdout line is JSON.
"""
from __future__ import annotations

from .jsonout import to_json
from .options import add_config, add_json_out, add_overrides, add_plugin, check_output_file, load_setup, write_json_out

HELP = "export a checkpoint to ONNX or TorchScript and check it against PyTorch"
# segkit.export.FORMATS and EXPORTERS, spelt out so that building the parser (every command's
# start, `segkit --help`) does not import torch; tests/test_cli.py keeps the two in step.
FORMATS = ("onnx", "torchscript")
EXPORTERS = ("torchscript", "dynamo")


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


def run(args) -> int:
    from ..export import export_and_check

    from ..engine.compat import check_checkpoint_config
    from ..export.exporters import default_output

    cfg = load_setup(args, training=False)
    inputs = [args.config, args.checkpoint]
    check_output_file("--output", args.output or default_output(args.checkpoint, args.format), cfg.DATA.ROOT, inputs)
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs)
    check_checkpoint_config(cfg, args.checkpoint)
    result = export_and_check(cfg, args.checkpoint, args.format, output=args.output, size=args.size,
                              dynamic=args.dynamic, exporter=args.exporter, opset=args.opset,
                              tolerance=args.tolerance)
    for name, diff in result["checks"].items():
        print(f"  {name:<24} {str(tuple(result['shapes'][name])):<20} max |logit diff| {diff:.3g}")
    verdict = "matches" if result["ok"] else f"DIFFERS from (tolerance {args.tolerance:g})"
    print(f"wrote {result['output']}: {args.format} {verdict} PyTorch, max |logit diff| {result['max_abs_diff']:.3g}")
    write_json_out(args.json_out, result)
    print(to_json(result), flush=True)
    return 0 if result["ok"] else 1
