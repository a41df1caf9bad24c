"""Paired image/mask augmentation: every albumentations transform, named from the config.

Albumentations moves image and mask together, so alignment is never hand-written. Two
segmentation-specific defaults are enforced here, because albumentations' own defaults are
made for images: masks are resampled with nearest neighbour (labels must stay labels), and
pixels that a geometric transform invents at the border are marked DATA.IGNORE_INDEX in the
mask rather than background (the network never saw what lies beyond the frame).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, List, Mapping, Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from ..registry import TRANSFORMS, node_kwargs
from .geometry import keep_ratio_steps

__all__ = ["build_transforms", "build_transform", "resize_transform", "geometry_steps", "seed_transforms", "denormalize", "LAB_RECIPE"]

# Bases that exist to be subclassed; naming one in a config can only be a mistake.
_BASE_NAMES = {"BasicTransform", "DualTransform", "ImageOnlyTransform", "Transform3D"}


def _register_albumentations() -> None:
    """Register each concrete albumentations transform under its class name (idempotent)."""
    for name in dir(A):
        obj = getattr(A, name)
        if (inspect.isclass(obj) and issubclass(obj, A.BasicTransform) and name not in _BASE_NAMES
                and not inspect.isabstract(obj) and name not in TRANSFORMS):
            TRANSFORMS.register(obj, name=name)


_register_albumentations()

# The lab report's training augmentation (section 2.2), probabilities and ranges as written
# there; configs/_base_/augment/lab.yaml holds the same list for configs.
LAB_RECIPE: List[dict] = [
    {"NAME": "HorizontalFlip", "P": 0.5},
    {"NAME": "VerticalFlip", "P": 0.2},
    {"NAME": "Rotate", "LIMIT": [-15, 15], "P": 0.3},
    {"NAME": "ColorJitter", "BRIGHTNESS": 0.2, "CONTRAST": 0.2, "SATURATION": 0.2, "HUE": 0.1, "P": 0.4},
    {"NAME": "GaussianBlur", "BLUR_LIMIT": [3, 3], "SIGMA_LIMIT": [0.5, 0.5], "P": 0.2},
    {"NAME": "Affine", "TRANSLATE_PX": [-5, 5], "SCALE": [1.0, 1.05], "SHEAR": [-2, 2], "P": 0.25},
]


def _accepted_kwargs(cls: Any):
    """Keyword names ``cls`` accepts, or None when it takes ``**kwargs`` (anything goes)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _with_suggestion(key: str, accepted) -> str:
    close = difflib.get_close_matches(key, accepted, n=1)
    return f"{key.upper()} (did you mean {close[0].upper()}?)" if close else key.upper()


def build_transform(node: Mapping[str, Any], ignore_index: int = 255, where: str = "transform") -> Any:
    """One transform from a {NAME: ..., KEY: value} node, with segkit's mask defaults filled in.

    Albumentations only warns about unknown arguments; here a misspelt key is an error,
    since a silently ignored ``PROB: 0.9`` would change an experiment without a trace.
    """
    if not isinstance(node, Mapping) or "NAME" not in node:
        raise ValueError(f"{where}: expected a mapping with a NAME key, e.g. {{NAME: HorizontalFlip, P: 0.5}}; "
                         f"got {node!r}")
    name = node["NAME"]
    try:
        cls = TRANSFORMS.get(name)
    except KeyError as e:
        raise KeyError(f"{where} (NAME: {name}): {e.args[0]}") from None
    kwargs = node_kwargs(node)
    accepted = _accepted_kwargs(cls)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            hints = [_with_suggestion(k, accepted) for k in unknown]
            raise TypeError(f"{where} (NAME: {name}): unknown argument(s) {', '.join(hints)}; "
                            f"{name} accepts {', '.join(sorted(a.upper() for a in accepted))}")
        # Dropouts use fill_mask for erased content, not for borders; leave their choice alone.
        if "fill_mask" in accepted and "fill_mask" not in kwargs and "Dropout" not in name:
            if inspect.signature(cls).parameters["fill_mask"].default is not None:
                kwargs["fill_mask"] = ignore_index
        if "mask_interpolation" in accepted and "mask_interpolation" not in kwargs:
            kwargs["mask_interpolation"] = cv2.INTER_NEAREST
    try:
        return cls(**kwargs)
    except Exception as e:  # albumentations reports bad values as ValueError (from pydantic)
        err = type(e) if type(e) in (TypeError, ValueError) else ValueError
        raise err(f"{where} (NAME: {name}) with {sorted(k.upper() for k in kwargs)} failed: {e}") from e


def resize_transform(size: int) -> A.Resize:
    """The resize to the network's SIZE x SIZE that every pipeline starts with.

    Pixel-area averaging when shrinking (Oxford photos are up to 1646 px): plain bilinear
    sampling aliases badly at 5-10x reduction; bilinear when enlarging small images; nearest
    neighbour for masks. The data cache applies this same op, so cached items match.
    """
    return A.Resize(size, size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                    area_for_downscale="image")


def geometry_steps(cfg, train: bool) -> list:
    """What INPUT.GEOMETRY puts before the augmentation list: the square resize to INPUT.SIZE, or the
    keep-ratio rescale (plus, in training, random rescale, crop and pad; see segkit.data.geometry).
    Their first step is deterministic and the data cache applies it, so on cached items it is a no-op."""
    if cfg.INPUT.GEOMETRY == "keep_ratio":
        return keep_ratio_steps(cfg, train)
    return [resize_transform(int(cfg.INPUT.SIZE))]


def build_transforms(cfg, train: bool, resize: bool = True) -> A.Compose:
    """The geometry INPUT.GEOMETRY asks for, the configured augmentations, then normalise and make
    tensors. ``resize`` False keeps each image's own size (sliding-window inference).

    The Compose is seeded with SEED (albumentations ignores the global random state);
    loader workers reseed their copy so each produces its own reproducible stream.
    """
    key = "INPUT.TRAIN_TRANSFORMS" if train else "INPUT.TEST_TRANSFORMS"
    nodes: Sequence[Mapping[str, Any]] = cfg.INPUT.TRAIN_TRANSFORMS if train else cfg.INPUT.TEST_TRANSFORMS
    steps = geometry_steps(cfg, train) if resize else []
    for i, node in enumerate(nodes):
        steps.append(build_transform(node, cfg.DATA.IGNORE_INDEX, where=f"{key}[{i}]"))
    steps += [A.Normalize(mean=list(cfg.INPUT.MEAN), std=list(cfg.INPUT.STD), max_pixel_value=255.0),
              ToTensorV2()]
    compose = A.Compose(steps)
    seed_transforms(compose, int(cfg.SEED))
    return compose


def seed_transforms(transform: Any, seed: int) -> None:
    """Seed a pipeline so that every step draws from its own random stream.

    Albumentations' ``set_random_seed`` hands the one seed to every child, so each step's
    first draw, the one that decides whether it fires, is the same number: with the lab
    recipe, Rotate (p .3) then fired only together with VerticalFlip (p .2 < .3) and
    HorizontalFlip, half the samples were never augmented at all, and the parameters were
    correlated too. Re-seeded per sample (segkit's resumable streams), that held for every
    sample of every epoch and cost generalisation (docs/quality.md). Here each child,
    at any depth, gets its own seed spawned from ``seed`` (numpy's SeedSequence), so the
    steps are independent and still a pure function of ``seed``.
    """
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)  # the node's own streams (OneOf's choice, Compose's shuffles)
    children = list(getattr(transform, "transforms", None) or [])
    if children:
        seeds = np.random.SeedSequence(int(seed) % 2**32).generate_state(len(children))
        for child, child_seed in zip(children, seeds):
            seed_transforms(child, int(child_seed))


def denormalize(tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo ``Normalize`` on a CHW or NCHW tensor: values back in [0, 1], ready for image grids."""
    shape = (-1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(shape)
    std_t = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(shape)
    return (tensor * std_t + mean_t).clamp(0.0, 1.0)
