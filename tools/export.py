#!/usr/bin/env python
"""Export a checkpoint to ONNX or TorchScript: `python tools/export.py --help`, the same as `segkit export`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
