#!/usr/bin/env python
"""Tables, curves and a ranking from run or sweep folders: `python tools/summarize.py --help`.

A thin wrapper over segkit.summary.main, the same as `segkit summarize`.
"""
import sys

from segkit.summary import main

if __name__ == "__main__":
    sys.exit(main())
