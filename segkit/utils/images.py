"""Reading any image file or in-memory image as HWC uint8 RGB, the way every part of segkit does.

The datasets, the data check, ``segkit infer`` and the Predictor all decode through here, so
an image means the same pixels wherever it is read.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "WIDE_MODES", "ImageLike", "load_rgb", "decode_rgb", "pil_to_rgb", "array_to_rgb",
           "to_rgb"]

# What the folder datasets and `segkit infer` take for images when they list a folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
# PIL modes with more than 8 bits per channel.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


def load_rgb(path: str) -> np.ndarray:
    """HWC uint8 RGB pixels of any image file, whatever its real format or its extension says.

    The Oxford set has GIFs and RGBA PNGs named .jpg, grayscale and CMYK JPEGs; PIL sniffs
    the content, and ``convert`` maps them all to RGB. 16-bit images are scaled down rather
    than clipped (PIL's own conversion would turn them nearly white). EXIF orientation is
    deliberately not applied: the trimaps were drawn on the stored pixels.
    """
    return decode_rgb(path)[0]


def decode_rgb(path: str, draft_size: Optional[int] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """``load_rgb``'s pixels and the file's own (width, height).

    With ``draft_size``, a JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 scale, the smallest
    that still has at least ``draft_size`` pixels on both sides (PIL's ``draft``), for a
    caller that resizes to that size anyway: several times less decoding work, nearly the
    same pixels after the resize. Other formats decode in full.
    """
    try:
        with Image.open(path) as img:
            size = img.size
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (int(draft_size), int(draft_size)))
            return pil_to_rgb(img), size
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file '{path}' does not exist; expected a readable image there") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise RuntimeError(f"Cannot read image '{path}' ({e}); expected a JPEG/PNG/GIF image file") from e


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """HWC uint8 RGB of a PIL image of any mode; 16-bit and 32-bit modes are scaled, not clipped."""
    if img.mode in WIDE_MODES:
        arr = np.asarray(img, dtype=np.float64)
        scale = 257.0 if img.mode.startswith("I;16") or arr.max() > 255 else 1.0
        img = Image.fromarray(np.clip(arr / scale, 0, 255).round().astype(np.uint8), mode="L")
    return np.array(img.convert("RGB"), dtype=np.uint8)


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1|2|3|4) array → uint8 RGB. 16-bit is scaled by 1/257, floats in
    [0, 1] by 255; alpha is dropped (as PIL's RGB conversion does)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"image array has shape {arr.shape}; expected (H, W) or (H, W, 1-4)")
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        if np.issubdtype(arr.dtype, np.floating) and a.size and a.max() <= 1.0:
            a = a * 255.0
        elif arr.dtype in (np.uint16, np.int32, np.int64, np.uint32) or (a.size and a.max() > 255):
            a = a / 257.0
        arr = np.clip(a, 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def to_rgb(image: ImageLike) -> np.ndarray:
    """HWC uint8 RGB from a path (via ``load_rgb``, as the datasets read), a PIL image of any
    mode (RGBA, L, P, CMYK, I;16 …) or a numpy array."""
    if isinstance(image, (str, os.PathLike)):
        return load_rgb(os.fspath(image))
    if isinstance(image, Image.Image):
        if image.mode in WIDE_MODES:
            return array_to_rgb(np.asarray(image))
        return np.array(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image)
    raise TypeError(f"cannot read an image from {type(image).__name__}; expected a path, "
                    "a PIL image or a numpy array")
