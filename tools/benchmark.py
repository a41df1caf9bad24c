#!/usr/bin/env python
"""Benchmark a config against a plain PyTorch loop: `python tools/benchmark.py --help`, the same as `segkit benchmark`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
