"""``python -m segkit <command>``: the same as the ``segkit`` console script."""
import sys

from segkit.commands import main

if __name__ == "__main__":
    sys.exit(main())
