#!/usr/bin/env python
"""Evaluate a checkpoint on a split: `python tools/test.py --help`, the same as `segkit test`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
