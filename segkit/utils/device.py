"""Which device to run on, and what the CPU can do (native bf16 arithmetic or not)."""
import functools

import torch

__all__ = ["resolve_device", "cpu_has_native_bf16", "cpu_flags", "NATIVE_BF16_FLAGS"]

# /proc/cpuinfo flags of CPUs that do bf16 math in hardware (x86: AMX, AVX512-BF16; Arm: BF16).
NATIVE_BF16_FLAGS = {"amx_bf16", "avx512_bf16", "bf16"}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE is '{name}' but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def cpu_flags(path: str = "/proc/cpuinfo") -> set:
    """The CPU feature flags the kernel reports (x86 "flags", Arm "Features"); empty elsewhere."""
    flags = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    return flags


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware, so bf16 autocast is several times faster.

    torch's own capability string says "AVX512" both on CPUs with and without AVX512-BF16,
    so the kernel's feature flags decide; oneDNN must be there to use them. Where the flags
    cannot be read (macOS, Windows) the answer is False: fp32 is never the slow choice.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)
