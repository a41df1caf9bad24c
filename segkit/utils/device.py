"""Which device to run on, and what the CPU can do (native bf16 arithmetic or not)."""
import functools

import torch

__all__ = ["resolve_device", "available_devices", "cpu_has_native_bf16", "cpu_flags", "NATIVE_BF16_FLAGS"]

# /proc/cpuinfo flags of CPUs that do bf16 math in hardware (x86: AMX, AVX512-BF16; Arm: BF16).
NATIVE_BF16_FLAGS = {"amx_bf16", "avx512_bf16", "bf16"}


def available_devices() -> list:
    """The device names this machine can run on, for messages: auto, cpu, then cuda / mps / xpu ones."""
    names = ["auto", "cpu"]
    for kind in ("cuda", "xpu"):
        backend = getattr(torch, kind, None)
        if backend is not None and backend.is_available():
            count = backend.device_count()
            names += [kind] + [f"{kind}:{i}" for i in range(count)]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str) -> torch.device:
    """The torch device DEVICE (or --device) names; "auto" is cuda when there is one, else cpu.
    A name torch does not know, or a device this machine lacks, is a ValueError naming the choices."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = ", ".join(f"'{n}'" for n in available_devices()) + ("" if torch.cuda.is_available() else
                                                                    " (no CUDA GPU here)")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {name!r} is not a device name; choose one of {choices}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE is '{name}' but CUDA is not available here; use 'auto' or 'cpu'")
    if device.type == "cpu":
        return device
    backend = torch.backends.mps if device.type == "mps" else getattr(torch, device.type, None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        raise ValueError(f"device {name!r} is not available on this machine; choose one of {choices}")
    count = getattr(backend, "device_count", lambda: 1)()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {name!r} does not exist: this machine has {count} {device.type} device(s); "
                         f"choose one of {choices}")
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
