#!/usr/bin/env python
"""Train a model from a config: `python tools/train.py --help`, the same as `segkit train`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
