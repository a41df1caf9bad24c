#!/usr/bin/env python
"""Train and test a grid of runs: `python tools/sweep.py --help`, the same as `segkit sweep`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
