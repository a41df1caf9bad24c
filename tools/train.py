#!/usr/bin/env python
"""Train from a config: `python tools/train.py --help`. A thin wrapper over segkit.cli.train_main."""
import sys

from segkit.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
