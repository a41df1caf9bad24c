"""The one error handler: a mistake the user can fix is one ``segkit: error: …`` line and exit 2.

A bad config key, a missing file, a checkpoint that does not fit: the message names the
file, key or value, and a traceback through the library would only bury it. ``SEGKIT_DEBUG=1``
lets the exception through with its traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from ..plugins import PluginError

__all__ = ["USER_ERRORS", "report_errors", "stdout_closed"]

# ConfigError, SweepError and the data checks' errors are ValueErrors; CheckpointError is
# added at run time (importing the engine here would pull torch into `segkit --help`).
USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError, KeyError,
               ValueError, TypeError, ModuleNotFoundError, PluginError)


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


def _stdout_is_closed() -> bool:
    """Whether stdout's reader has gone (flushing fails again, or the pipe reports an error)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError, AttributeError):
        return False
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here, or stdout is not a real file
        return False


def stdout_closed(error: BrokenPipeError) -> int:
    """``segkit list | head -1``: the reader closed the pipe early, which is not an error of ours.
    As CPython's documentation recommends (signal module, "Note on SIGPIPE"), point stdout at
    devnull so the interpreter's final flush stays quiet, and exit with status 1 without a
    word. A broken pipe that is not stdout's is raised again."""
    if not _stdout_is_closed():
        raise error
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor (captured in tests)
        pass
    return 1
