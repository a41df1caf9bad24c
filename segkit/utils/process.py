"""Keep freed tensor memory in the process instead of handing it back to the kernel (glibc).

PyTorch's CPU tensors come straight from malloc. glibc serves large blocks with mmap and
returns free memory at the top of its heap to the kernel, so every training step faults its
activations in again, page by page, and the kernel zeroes each page first: for the light
ResNet34-UNet at batch 8, 24,000 faults per step at 128 px and 70,000 at 256 px, about a
tenth of the step's time on 2 cores. Raising glibc's mmap threshold to its maximum and its trim threshold out of
reach makes freed blocks stay in the heap for the next step to reuse, which is what the
allocators Intel recommends preloading for CPU training (jemalloc, tcmalloc) do. The price:
the process keeps its peak heap until it exits.
"""
import ctypes
import functools
import logging
import os
import platform
import sys

__all__ = ["configure_allocator", "keep_freed_memory", "USER_SETTINGS"]

logger = logging.getLogger("segkit")

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers from glibc's malloc.h
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit: blocks above it are always mmapped
_TRIM_NEVER = 2**31 - 1  # mallopt takes an int
# A user's own allocator choice wins: these mean someone already decided.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                  "GLIBC_TUNABLES")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def _skip_reason():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return "the C library is not glibc"
    if any(k in os.environ for k in USER_SETTINGS):
        return "malloc tunables are set in the environment"
    if any(name in os.environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS):
        return "another allocator is preloaded"
    return None


@functools.lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Apply the setting once per process; True when it is in force.

    Worker processes forked afterwards inherit it. Nothing happens (False) off glibc, or when
    the environment already tunes malloc or preloads another allocator.
    """
    reason = _skip_reason()
    if reason is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1 and \
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER) == 1
        except (OSError, AttributeError):
            ok = False
        reason = None if ok else "mallopt refused the settings"
    if reason:
        logger.debug("MALLOC_KEEP_FREED: left malloc as it is (%s)", reason)
        return False
    return True


def configure_allocator(cfg) -> bool:
    """Apply ``cfg.MALLOC_KEEP_FREED``: every entry point (tools, Trainer, Predictor) calls this
    before it allocates much; once in force the setting holds for the whole process."""
    return bool(cfg.MALLOC_KEEP_FREED) and keep_freed_memory()
