"""Reading any image file or in-memory image as HWC uint8 RGB, the way every part of segkit does.

The datasets, the data check, ``segkit infer`` and the Predictor all decode through here, so
an image means the same pixels wherever it is read.

EXIF orientation. A camera or phone often stores a photo sideways and records in the EXIF
Orientation tag how to turn it for display. Every image read here is turned upright by that
tag (PIL's ``ImageOps.exif_transpose``), so training, the data check, testing, ``segkit infer``
and the Predictor all see the picture a person sees, and what infer writes (masks, overlays)
is in that upright orientation too. A label image (mask, trimap) read with ``read_label`` is
turned by exactly the same transposition: by its own Orientation tag when it has one, else by
its image's, since a label without a tag is taken to be drawn on the image's stored pixels
(the Oxford trimaps were; no image of the Oxford sample carries a turning tag, so nothing
changes there). Image and label thus always stay aligned.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "WIDE_MODES", "ImageLike", "DECODE_VERSION", "DecodedImage", "load_rgb",
           "decode_rgb", "decode_image", "pil_to_rgb", "array_to_rgb", "to_rgb", "exif_orientation",
           "read_orientation", "orient_array", "read_label", "describe_orientation", "DraftSize", "draft_request"]

# What the folder datasets and `segkit infer` take for images when they list a folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
# PIL modes with more than 8 bits per channel.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]
# Bump whenever a file decodes to other pixels than before (a cache of decoded files keys on
# it): 2 = EXIF orientation applied.
DECODE_VERSION = 2
# The EXIF Orientation tag.
ORIENTATION_TAG = 0x0112

# Orientation → the same transposition ImageOps.exif_transpose makes, on a numpy array (H, W, …).
_ARRAY_TRANSPOSE: Dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],                    # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],                 # ROTATE_180
    4: lambda a: a[::-1],                       # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),              # TRANSPOSE
    6: lambda a: np.rot90(a, -1),               # ROTATE_270: 90° clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # TRANSVERSE
    8: lambda a: np.rot90(a, 1),                # ROTATE_90: 90° counter-clockwise
}
_DESCRIPTIONS = {1: "shown as stored", 2: "mirrored left-right", 3: "turned 180°", 4: "mirrored top-bottom",
                 5: "mirrored across its diagonal", 6: "turned 90° clockwise",
                 7: "mirrored across its anti-diagonal", 8: "turned 90° counter-clockwise"}


class DecodedImage(NamedTuple):
    """One decoded image file: upright pixels, its upright (width, height) at full scale, and
    the EXIF orientation that was applied (1: none)."""

    rgb: np.ndarray
    size: Tuple[int, int]
    orientation: int


def load_rgb(path: str) -> np.ndarray:
    """HWC uint8 RGB pixels of any image file, whatever its real format or its extension says,
    turned upright by its EXIF orientation (see the module docstring).

    The Oxford set has GIFs and RGBA PNGs named .jpg, grayscale and CMYK JPEGs; PIL sniffs
    the content, and ``convert`` maps them all to RGB. 16-bit images are scaled down rather
    than clipped (PIL's own conversion would turn them nearly white).
    """
    return decode_image(path).rgb


def decode_rgb(path: str, draft_size: Optional[int] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """``load_rgb``'s pixels and the file's own upright (width, height); see ``decode_image``."""
    decoded = decode_image(path, draft_size)
    return decoded.rgb, decoded.size


DraftSize = Union[int, Callable[[int, int], Tuple[int, int]], None]


def draft_request(draft_size: DraftSize, width: int, height: int) -> Optional[Tuple[int, int]]:
    """The (width, height) a JPEG decode must still cover: ``draft_size`` on both sides, or what a
    callable ``draft_size(width, height)`` asks for an image of that stored size; None: full size."""
    if not draft_size:
        return None
    if callable(draft_size):
        w, h = draft_size(width, height)
        return int(w), int(h)
    return int(draft_size), int(draft_size)


def decode_image(path: str, draft_size: DraftSize = None) -> DecodedImage:
    """``load_rgb``'s pixels, the image's upright (width, height) at full scale, and the EXIF
    orientation applied, which a label of this image must get too (``read_label``).

    With ``draft_size``, a JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 scale, the smallest
    that still has at least ``draft_size`` pixels on both sides (PIL's ``draft``), for a
    caller that resizes to that size anyway: several times less decoding work, nearly the
    same pixels after the resize. A callable ``draft_size(width, height) -> (w, h)`` asks for a
    size that depends on the image's stored size (a rescale that keeps the aspect ratio).
    Other formats decode in full. ``size`` is the full-scale size either way.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            request = draft_request(draft_size, width, height) if img.format == "JPEG" else None
            if request:
                img.draft("RGB", request)
            img.load()  # a PNG's eXIf chunk may follow its pixels
            orientation = exif_orientation(img)
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
                if orientation >= 5:
                    width, height = height, width
            return DecodedImage(pil_to_rgb(img), (width, height), orientation)
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file '{path}' does not exist; expected a readable image there") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise RuntimeError(f"Cannot read image '{path}' ({e}); expected a JPEG/PNG/GIF image file") from e


def exif_orientation(img: Image.Image, default: Optional[int] = 1) -> Optional[int]:
    """The EXIF Orientation of an opened image (1..8), or ``default`` when it has no valid one
    (absent, 0, out of range: what ``ImageOps.exif_transpose`` leaves as stored)."""
    try:
        value = img.getexif().get(ORIENTATION_TAG)
    except Exception:  # noqa: BLE001  a damaged EXIF block means no orientation, as PIL's viewers take it
        return default
    return value if isinstance(value, int) and 1 <= value <= 8 else default


def read_orientation(path: str) -> int:
    """The EXIF orientation of an image file, 1 when it has none or cannot be read (a missing
    or broken image is reported where its pixels are read, not here)."""
    try:
        with Image.open(path) as img:
            return int(exif_orientation(img))
    except (OSError, ValueError, UnidentifiedImageError):
        return 1


def orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H, W[, C]) transposed as ``ImageOps.exif_transpose`` turns an image with this
    EXIF orientation; orientation 1 (or any value outside 2..8) returns it unchanged."""
    turn = _ARRAY_TRANSPOSE.get(orientation)
    return array if turn is None else np.ascontiguousarray(turn(array))


def read_label(path: str, image_orientation: int = 1) -> np.ndarray:
    """The raw pixel values of a label image (mask, trimap; palette PNGs give their indices),
    turned like its image: by the label's own EXIF orientation when it has one, else by
    ``image_orientation``, the orientation ``decode_image`` applied to its image.

    PIL's exceptions pass through, for the dataset to word.
    """
    with Image.open(path) as img:
        values = np.array(img)
        own = exif_orientation(img, default=None)
    return orient_array(values, image_orientation if own is None else own)


def describe_orientation(orientation: int) -> str:
    """"EXIF orientation 6 (turned 90° clockwise)": for messages."""
    return f"EXIF orientation {orientation} ({_DESCRIPTIONS.get(orientation, 'not a valid value')})"


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
    mode (RGBA, L, P, CMYK, I;16 …) or a numpy array.

    A path or a PIL image is turned upright by its EXIF orientation, as a file is everywhere
    in segkit, so a prediction comes out upright (``ImageOps.exif_transpose`` drops the tag,
    so an image already turned by it is not turned twice). An array has no EXIF: used as is.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_rgb(os.fspath(image))
    if isinstance(image, Image.Image):
        if exif_orientation(image) != 1:
            image = ImageOps.exif_transpose(image)
        if image.mode in WIDE_MODES:
            return array_to_rgb(np.asarray(image))
        return np.array(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image)
    raise TypeError(f"cannot read an image from {type(image).__name__}; expected a path, "
                    "a PIL image or a numpy array")
