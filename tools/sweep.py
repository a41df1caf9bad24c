#!/usr/bin/env python
"""Run a grid of trainings and tests: `python tools/sweep.py --help`.

A thin wrapper over segkit.sweep.main, the same as `segkit sweep`.
"""
import sys

from segkit.sweep import main

if __name__ == "__main__":
    sys.exit(main())
