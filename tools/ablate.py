#!/usr/bin/env python
"""Paired ablation, segkit against a plain PyTorch loop: `python tools/ablate.py --help`, the same as `segkit ablate`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["ablate", *sys.argv[1:]]))
