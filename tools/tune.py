#!/usr/bin/env python
"""Search config values with Optuna: `python tools/tune.py --help`, the same as `segkit tune`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
