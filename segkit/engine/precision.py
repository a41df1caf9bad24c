"""Mixed-precision choices, made once from the config and shared by train and test.

``SOLVER.AMP.DTYPE: auto`` (the default) picks the fastest precision that keeps accuracy on
the machine at hand: bf16 autocast on a CPU with native bf16 arithmetic (Intel AMX or
AVX512-BF16, Arm BF16) or a CUDA GPU that supports it, fp16 (with a GradScaler, see the
Trainer) on older CUDA GPUs, and plain fp32 elsewhere, since emulated bf16 on a CPU without
those instructions is slower than fp32.
"""
import contextlib

import torch

from ..utils.device import cpu_has_native_bf16, resolve_device

__all__ = ["amp_dtype", "autocast_context", "forward_batch", "main_output", "precision_name"]

_DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
_AUTO = "auto"


def _auto_dtype(device: torch.device):
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def amp_dtype(cfg, device: torch.device = None):
    """The autocast dtype for ``cfg`` on ``device`` (default: cfg.DEVICE), or None for fp32.

    SOLVER.AMP.ENABLED False always means fp32; DTYPE "auto" chooses per device (see the
    module docstring); "bfloat16"/"float16" force that dtype.
    """
    if not cfg.SOLVER.AMP.ENABLED:
        return None
    key = str(cfg.SOLVER.AMP.DTYPE).lower()
    if key == _AUTO:
        return _auto_dtype(resolve_device(cfg.DEVICE) if device is None else device)
    if key not in _DTYPES:
        raise ValueError(f"SOLVER.AMP.DTYPE is '{cfg.SOLVER.AMP.DTYPE}'; expected 'auto' or one of "
                         f"{sorted(set(_DTYPES))}")
    return _DTYPES[key]


def precision_name(dtype) -> str:
    """'bf16', 'fp16' or 'fp32': how logs and the benchmark name an amp_dtype result."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def autocast_context(device: torch.device, dtype):
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def forward_batch(model, batch, device: torch.device, dtype, channels_last: bool):
    """Move a loader batch to ``device`` and run ``model`` on it as configured.

    Returns (images, masks, logits) with logits in fp32, the one precision losses and metrics
    see; training and evaluation both go through here, so they cannot drift apart. A model
    with deep supervision returns a list in training mode (main output first); the list is
    kept, each map in fp32, for the loss to weigh.
    """
    images = batch["image"].to(device, non_blocking=True)
    masks = batch["mask"].to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast_context(device, dtype):
        logits = model(images)
    if isinstance(logits, (list, tuple)):
        return images, masks, [x.float() for x in logits]
    return images, masks, logits.float()


def main_output(logits):
    """The final prediction of a model's output: the first map of a deep-supervision list."""
    return logits[0] if isinstance(logits, (list, tuple)) else logits
