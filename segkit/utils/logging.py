"""segkit's log lines go to stderr, so stdout stays for results (``segkit test``'s JSON line)."""
from __future__ import annotations

import logging
import sys
from typing import Optional

from .distributed import launched_rank

__all__ = ["setup_logging"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the stream of the moment the
    handler was made: a caller that swaps stderr (a test runner, a redirect) and closes the
    old one must not make every later log line fail."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(level: Optional[int] = None) -> None:
    """Log segkit's messages to stderr, keeping stdout for results (test.py's JSON line).

    Under torchrun only rank 0 logs at INFO; the other processes would repeat every line, so
    they report warnings and errors only.
    """
    if level is None:
        level = logging.INFO if launched_rank() == 0 else logging.WARNING
    log = logging.getLogger("segkit")
    if not any(getattr(h, "_segkit", False) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        handler._segkit = True
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
