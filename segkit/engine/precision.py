"""Device and mixed-precision choices, made once from the config and shared by train and test."""
import contextlib

import torch

__all__ = ["resolve_device", "autocast_context", "forward_batch", "main_output"]

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
