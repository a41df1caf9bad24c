#!/usr/bin/env python
"""Predict masks for images: `python tools/infer.py --help`, the same as `segkit infer`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
