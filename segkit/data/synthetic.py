"""A tiny made-up pet dataset in the Oxford layout, so tests and smoke runs need no download.

Each image holds one textured blob (the "pet") on a cluttered background that also has
plain-coloured decoy shapes, so a model must learn texture and shape rather than a colour
threshold. Trimaps carry the same 1/2/3 coding as Oxford's, with a boundary band, and image
sizes vary so resizing is exercised.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, Tuple

import cv2
import numpy as np
from PIL import Image

from ..registry import DATASETS
from .cache import default_cache_dir
from .oxford_pet import OxfordPet

__all__ = ["generate_synthetic_pets", "SyntheticPets", "default_synthetic_root"]

PARAMS_FILE = "synthetic.json"
# Bump when the drawing changes, so stale folders are regenerated rather than reused.
GENERATOR_VERSION = 1
# Two made-up breeds, named after Oxford's convention: cat breeds capitalised, dog breeds not.
_BREEDS = (("Blobcat", 1, 1, 1), ("blob_dog", 2, 2, 1))  # name, class id, species, breed id


def _params(num_trainval: int, num_test: int, image_size: int, seed: int) -> Dict[str, Any]:
    return {"version": GENERATOR_VERSION, "num_trainval": int(num_trainval), "num_test": int(num_test),
            "image_size": int(image_size), "seed": int(seed)}


def _colour(rng: np.random.Generator) -> Tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A gradient plus random rectangles, lines and plain decoy ellipses."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0.0, 1.0, w if rng.random() < 0.5 else h, dtype=np.float32)
    ramp = c0 + (c1 - c0) * t[:, None]
    img = np.broadcast_to(ramp[None] if len(t) == w else ramp[:, None], (h, w, 3)).astype(np.uint8).copy()
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(-w // 2, w // 2)), y0 + int(rng.integers(-h // 2, h // 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(img, (x0, y0), (x1, y1), _colour(rng), -1)
        elif kind == 1:
            cv2.line(img, (x0, y0), (x1, y1), _colour(rng), int(rng.integers(1, 5)))
        else:
            axes = (int(rng.integers(4, w // 5 + 5)), int(rng.integers(4, h // 5 + 5)))
            cv2.ellipse(img, (x0, y0), axes, float(rng.uniform(0, 180)), 0, 360, _colour(rng), -1)
    return img


def _pet_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Union of 2-4 overlapping ellipses around one centre: a body with a head and limbs."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    scale = min(h, w) * rng.uniform(0.18, 0.3)
    for i in range(int(rng.integers(2, 5))):
        off = (0.0, 0.0) if i == 0 else rng.normal(0, 0.45 * scale, 2)
        axes = (int(scale * rng.uniform(0.5, 1.2)), int(scale * rng.uniform(0.35, 0.9)))
        centre = (int(cx + off[0]), int(cy + off[1]))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def _pet_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two-colour stripes or spots: the cue that tells the pet from plain decoys."""
    base, other = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), rng.uniform(5, 12)
        weight = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0)
        return np.where(weight[..., None], base, other).astype(np.uint8)
    tex = np.empty((h, w, 3), np.uint8)
    tex[:] = base.astype(np.uint8)
    for _ in range(int(h * w / 120)):
        cv2.circle(tex, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)),
                   tuple(int(c) for c in other), -1)
    return tex


def _draw_sample(seed: int, index: int, image_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One image and trimap, from a generator seeded by (seed, index) so items are independent."""
    rng = np.random.default_rng([seed, index])
    h, w = (int(round(image_size * rng.uniform(0.75, 1.25))) for _ in range(2))
    img = _background(rng, h, w)
    pet = _pet_mask(rng, h, w)
    img = np.where(pet[..., None] == 1, _pet_texture(rng, h, w), img)
    noise = rng.normal(0, rng.uniform(4, 12), img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    band = cv2.dilate(pet, kernel) != cv2.erode(pet, kernel)
    trimap = np.where(pet == 1, 1, 2).astype(np.uint8)
    trimap[band] = 3
    return img, trimap


def _write_lists(root: str, names_by_split: Dict[str, list]) -> None:
    ann = os.path.join(root, "annotations")
    lines = {split: [f"{name} {cid} {species} {breed}" for name, cid, species, breed in items]
             for split, items in names_by_split.items()}
    for split in ("trainval", "test"):
        with open(os.path.join(ann, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines[split]) + "\n")
    header = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:2 Class ids", "#SPECIES: 1:Cat 2:Dog",
              "#BREED ID: 1-N within species", "#Synthetic pets written by segkit.data.synthetic"]
    with open(os.path.join(ann, "list.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(header + sorted(lines["trainval"] + lines["test"])) + "\n")


def _generate_into(root: str, params: Dict[str, Any]) -> None:
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "annotations", "trimaps"))
    names_by_split: Dict[str, list] = {"trainval": [], "test": []}
    counts = {"trainval": params["num_trainval"], "test": params["num_test"]}
    index = 0
    for split in ("trainval", "test"):
        for k in range(counts[split]):
            breed, cid, species, breed_id = _BREEDS[index % 2]
            name = f"{breed}_{index + 1}"
            img, trimap = _draw_sample(params["seed"], index, params["image_size"])
            Image.fromarray(img).save(os.path.join(root, "images", f"{name}.jpg"), quality=90)
            Image.fromarray(trimap).save(os.path.join(root, "annotations", "trimaps", f"{name}.png"))
            names_by_split[split].append((name, cid, species, breed_id))
            index += 1
    _write_lists(root, names_by_split)
    # Written last: its presence marks a complete folder.
    with open(os.path.join(root, PARAMS_FILE), "w", encoding="utf-8") as f:
        json.dump(params, f, indent=2, sort_keys=True)


def _read_params(root: str):
    try:
        with open(os.path.join(root, PARAMS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_generated(root: str) -> bool:
    """Whether ``root`` holds a dataset this module wrote (and nothing else): only then may it be replaced."""
    params = _read_params(root)
    return (isinstance(params, dict) and set(params) == set(_params(0, 0, 0, 0))
            and set(os.listdir(root)) <= {"images", "annotations", PARAMS_FILE})


def default_synthetic_root(num_trainval: int, num_test: int, image_size: int, seed: int) -> str:
    """Where the dataset goes when DATA.ROOT is empty: the user's cache folder (see
    ``default_cache_dir``), one folder per parameter set, so an installed segkit never writes
    into site-packages or the working folder and two configs never regenerate each other's data."""
    name = f"pets-v{GENERATOR_VERSION}-{num_trainval}+{num_test}-{image_size}px-seed{seed}"
    return os.path.join(default_cache_dir(), "synthetic", name)


def generate_synthetic_pets(root: str, num_trainval: int = 48, num_test: int = 16,
                            image_size: int = 160, seed: int = 0) -> str:
    """Write a synthetic Oxford-layout dataset at ``root`` (unless it is there already) and return root.

    Writes images/<name>.jpg, annotations/trimaps/<name>.png, annotations/{trainval,test,list}.txt
    and synthetic.json (the parameters). An existing folder whose synthetic.json matches is
    reused; one whose parameters differ is replaced. Any other non-empty folder (one that is not
    a dataset generated here, with nothing else in it) is never touched, nor is a file.
    Generation happens in a temporary sibling folder that is renamed into place, so concurrent
    processes never see half a dataset.
    """
    if num_trainval < 0 or num_test < 0 or image_size < 16:
        raise ValueError(f"generate_synthetic_pets: need num_trainval, num_test >= 0 and image_size >= 16; "
                         f"got {num_trainval}, {num_test}, {image_size}")
    params = _params(num_trainval, num_test, image_size, seed)
    given, root = root, os.path.abspath(os.path.expanduser(root))
    if os.path.exists(root) and not os.path.isdir(root):
        raise NotADirectoryError(f"synthetic dataset: DATA.ROOT '{given}' is a file; the dataset is generated into "
                                 "a folder there. Give a new or empty folder")
    if _read_params(root) == params:
        return root
    if os.path.isdir(root) and os.listdir(root) and not _is_generated(root):
        raise FileExistsError(f"synthetic dataset: DATA.ROOT '{given}' is a non-empty folder that is not a synthetic "
                              f"dataset segkit generated (no valid {PARAMS_FILE}, or other files beside it); "
                              "generating there would replace it. Give a new or empty folder")
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.tmp-", dir=parent)
    try:
        _generate_into(os.path.join(tmp, "data"), params)
        _move_into_place(os.path.join(tmp, "data"), root, params)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _move_into_place(src: str, root: str, params: Dict[str, Any]) -> None:
    """Rename ``src`` to ``root``, replacing a stale generated folder; another process's
    matching result, if it got there first, wins and ``src`` is discarded."""
    if _read_params(root) == params:
        return
    if os.path.isdir(root):
        # A stale or empty folder: move it aside first, since rename cannot replace a non-empty dir.
        trash = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.old-", dir=os.path.dirname(root))
        try:
            os.rename(root, os.path.join(trash, "data"))
        except FileNotFoundError:
            pass  # someone else moved it already
        finally:
            shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(src, root)
    except OSError:
        if _read_params(root) != params:
            raise


@DATASETS.register(name="synthetic")
class SyntheticPets(OxfordPet):
    """OxfordPet over a generated folder; generated on first use (or when its parameters change).

    ``seed`` chooses the train/val split like OxfordPet's; ``data_seed`` chooses the pictures.
    ``download`` is accepted so a DATA.DATASET node written for oxford_pet still builds;
    nothing is ever downloaded. ``strict`` and ``exclude`` work as in OxfordPet. An empty
    ``root`` (DATA.ROOT) means the user's cache folder (``default_synthetic_root``).
    """

    def __init__(self, root: str, split: str, ignore_index: int = 255, val_fraction: float = 0.1,
                 seed: int = 42, boundary: str = "foreground", num_trainval: int = 48, num_test: int = 16,
                 image_size: int = 160, data_seed: int = 0, download: bool = False, strict: bool = True,
                 exclude: Iterable[str] = ()):
        root = generate_synthetic_pets(root or default_synthetic_root(num_trainval, num_test, image_size, data_seed),
                                       num_trainval=num_trainval, num_test=num_test, image_size=image_size,
                                       seed=data_seed)
        super().__init__(root, split, ignore_index=ignore_index, val_fraction=val_fraction,
                         seed=seed, boundary=boundary, download=False, strict=strict, exclude=exclude)
