#!/usr/bin/env python
"""Test from a config: `python tools/test.py --help`. A thin wrapper over segkit.cli.test_main."""
import sys

from segkit.cli import test_main

if __name__ == "__main__":
    sys.exit(test_main())
