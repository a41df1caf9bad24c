"""Time a config on this machine: training, eval-loop and batch-1 inference speed, the loader alone,
peak memory; optionally against a plain PyTorch loop and a peer library's model.

    segkit benchmark configs/resnet34_unet_aug_cosine.yaml DATA.ROOT /data/pets INPUT.SIZE 128 --baseline
    segkit benchmark configs/unet_aug_cosine.yaml DATA.ROOT /data/pets --baseline --onnx
    segkit benchmark resnet34_unet_aug_cosine DATA.ROOT /data/pets INPUT.SIZE 128 --onnx --int8
    segkit benchmark configs/resnet34_unet_light_aug_cosine.yaml DATA.ROOT /data/pets --baseline --peer smp
    segkit benchmark configs/resnet34_unet_aug_cosine.yaml DATA.ROOT /data/pets --to-dice 0.80

segkit's side is the real code path: the Trainer's training step on its own loader (data
cache, configured precision and memory format) and inference in inference mode. --baseline
adds what a student writes first: PIL decodes and resizes each JPEG per item, the same model
in fp32 and NCHW, BCE + Adam, a DataLoader with the same workers, an eval loop under no_grad.
The sides run interleaved in one process for --rounds rounds and each keeps its best round,
so a busy machine slows both alike: compare the ratios. --to-dice D instead trains both from
the same initial weights at a constant learning rate until the test Dice reaches D (or
--max-epochs pass) and reports the training time each needed.

No hooks run and the data check is skipped: nothing is written but the data cache. The
output ends with one JSON line holding every number (--json-out PATH writes it too).
"""
from __future__ import annotations

from .jsonout import to_json
from .options import add_config, add_json_out, add_overrides, add_plugin, check_output_file, load_setup, write_json_out

HELP = "time training and inference, against a plain PyTorch loop"


def add_arguments(parser) -> None:
    add_config(parser)
    add_overrides(parser)
    add_plugin(parser)
    parser.add_argument("--baseline", action="store_true", help="also run the plain fp32 PyTorch loop and print ratios")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before timing (default 3)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per round (default 10)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate segkit and baseline this many times; each reports its best (default 2)")
    parser.add_argument("--infer-batches", type=int, default=5, help="timed eval-loop batches (default 5)")
    parser.add_argument("--latency-repeats", type=int, default=10, help="timed batch-1 forward passes (default 10)")
    parser.add_argument("--loader-batches", type=int, default=20,
                        help="batches timed for the loader alone (default 20)")
    # No argparse choices: the names live in segkit.benchmark.PEERS, which imports torch; an
    # unknown name is reported by run() as one error line.
    parser.add_argument("--peer", default=None, metavar="NAME",
                        help="also time a peer library's model (smp: Unet(resnet34)) in the plain loop, in fp32 "
                             "and with segkit's autocast dtype + channels_last, and print segkit/peer ratios")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile segkit's training forward (compile time reported)")
    parser.add_argument("--onnx", action="store_true",
                        help="also time inference of the model exported to ONNX and run by onnxruntime (fp32)")
    parser.add_argument("--int8", action="store_true",
                        help="also time onnxruntime inference of the model quantized to static INT8 (as segkit "
                             "export --quantize int8 makes it, calibrated on 16 training images)")
    parser.add_argument("--to-dice", type=float, default=None, metavar="D",
                        help="time-to-quality instead: train segkit and the plain loop until test Dice >= D")
    parser.add_argument("--max-epochs", type=int, default=30,
                        help="with --to-dice: give up after this many epochs (default 30)")
    add_json_out(parser)


def run(args) -> int:
    from ..benchmark import BenchmarkOptions, run_benchmark

    # Options first: a bad number is reported before the config is loaded.
    options = BenchmarkOptions(
        baseline=args.baseline, warmup=args.warmup, steps=args.steps, rounds=args.rounds,
        infer_batches=args.infer_batches, latency_repeats=args.latency_repeats,
        loader_batches=args.loader_batches, peer=args.peer, compile=args.compile, onnx=args.onnx, int8=args.int8,
        to_dice=args.to_dice, max_epochs=args.max_epochs)
    cfg = load_setup(args, training=False)
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs=[args.config])
    result = {"config": args.config, "overrides": list(args.opts)}
    result.update(run_benchmark(cfg, options, label=args.config))
    write_json_out(args.json_out, result)
    print(to_json(result), flush=True)
    return 0
