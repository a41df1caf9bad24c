#!/usr/bin/env python
"""Benchmark a config against a plain PyTorch loop: `python tools/benchmark.py --help`. A thin wrapper over segkit.benchmark.main."""
import sys

from segkit.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
