#!/usr/bin/env python
"""Predict masks from a config and checkpoint: `python tools/infer.py --help`. A thin wrapper over segkit.infer_cli.main."""
import sys

from segkit.infer_cli import main

if __name__ == "__main__":
    sys.exit(main())
