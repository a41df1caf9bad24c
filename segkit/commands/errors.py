"""The one error handler: a mistake the user can fix is one ``segkit: error: …`` line and exit 2.

A bad config key, a missing file, a checkpoint that does not fit: the message names the
file, key or value, and a traceback through the library would only bury it. ``SEGKIT_DEBUG=1``
lets the exception through with its traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

__all__ = ["USER_ERRORS", "report_errors"]

# ConfigError, SweepError and the data checks' errors are ValueErrors; CheckpointError is
# added at run time (importing the engine here would pull torch into `segkit --help`).
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, KeyError, ValueError,
               TypeError, ModuleNotFoundError)


def _expected() -> tuple:
    from ..engine.checkpoint import CheckpointError

    return USER_ERRORS + (CheckpointError,)


def report_errors(run: Callable, args) -> int:
    """``run(args)``, with user errors and Ctrl-C turned into a message and an exit status."""
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print(f"segkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  sorted below: only the user's errors are caught
        if os.environ.get("SEGKIT_DEBUG") or not isinstance(e, _expected()):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"segkit: error: {msg}", file=sys.stderr)
        return 2
