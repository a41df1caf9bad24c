#!/usr/bin/env python
"""Paired ablation, segkit against a plain PyTorch loop: `python tools/ablate.py --help`.
A thin wrapper over segkit.experiments.ablation.main."""
import sys

from segkit.experiments.ablation import main

if __name__ == "__main__":
    sys.exit(main())
