"""Device and mixed-precision choices, made once from the config and shared by train and test."""
import contextlib

import torch

__all__ = ["resolve_device", "autocast_context"]

_DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE is '{name}' but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def amp_dtype(cfg):
    """The autocast dtype the config asks for, or None for full fp32."""
    if not cfg.SOLVER.AMP.ENABLED:
        return None
    key = str(cfg.SOLVER.AMP.DTYPE).lower()
    if key not in _DTYPES:
        raise ValueError(f"SOLVER.AMP.DTYPE is '{cfg.SOLVER.AMP.DTYPE}'; expected one of "
                         f"{sorted(set(_DTYPES))}")
    return _DTYPES[key]


def autocast_context(device: torch.device, dtype):
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
