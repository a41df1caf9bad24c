#!/usr/bin/env python
"""Export from a config: `python tools/export.py --help`. A thin wrapper over segkit.export.cli.main."""
import sys

from segkit.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
