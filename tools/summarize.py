#!/usr/bin/env python
"""Tables, curves and a ranking from run or sweep folders: `python tools/summarize.py --help`, the same as `segkit summarize`."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main(["summarize", *sys.argv[1:]]))
