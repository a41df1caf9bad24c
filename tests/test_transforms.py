"""Paired transforms: image and mask stay aligned, masks keep their labels, borders are ignored."""
import importlib
import os

import albumentations as A
import numpy as np
import pytest
import torch
import yaml

from segkit.config.defaults import get_default_config
from segkit.data import transforms as T
from segkit.data.transforms import LAB_RECIPE, build_transform, build_transforms, denormalize
from segkit.registry import TRANSFORMS

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "_base_", "augment")
IGNORE = 255


def _square(size=64):
    """A bright, off-centre square on a dark image, and its mask, so flips and shifts show."""
    image = np.full((size, size, 3), 20, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    image[14:40, 20:46] = 220
    mask[14:40, 20:46] = 1
    return image, mask


def _iou(image, mask):
    bright, pet = image.mean(axis=2) > 120, mask == 1
    return (bright & pet).sum() / max((bright | pet).sum(), 1)


def _pipeline(nodes, seed):
    return A.Compose([build_transform(n, IGNORE) for n in nodes], seed=seed)


@pytest.mark.parametrize("nodes", [
    [{"NAME": "HorizontalFlip", "P": 1.0}],
    [{"NAME": "VerticalFlip", "P": 1.0}],
    [{"NAME": "Rotate", "LIMIT": [15, 15], "P": 1.0}],
    [{"NAME": "Affine", "TRANSLATE_PX": [6, 6], "SHEAR": [-2, 2], "SCALE": [1.0, 1.05], "P": 1.0}],
    LAB_RECIPE,
], ids=["hflip", "vflip", "rotate", "affine", "lab_recipe"])
def test_image_and_mask_stay_aligned(nodes):
    image, mask = _square()
    moved = 0
    for seed in range(12):
        out = _pipeline(nodes, seed)(image=image, mask=mask)
        assert _iou(out["image"], out["mask"]) > 0.9, seed
        assert set(np.unique(out["mask"])) <= {0, 1, IGNORE}
        moved += not np.array_equal(out["mask"], mask)
    assert moved > 0


@pytest.mark.parametrize("node", [
    {"NAME": "Rotate", "LIMIT": [15, 15], "P": 1.0},
    {"NAME": "Affine", "TRANSLATE_PX": [6, 6], "P": 1.0},
    {"NAME": "PadIfNeeded", "MIN_HEIGHT": 80, "MIN_WIDTH": 80, "P": 1.0},
])
def test_filled_borders_are_ignored_in_the_mask(node):
    image, mask = _square()
    out = _pipeline([node], 0)(image=image, mask=mask)
    filled = out["mask"] == IGNORE
    assert filled[0, 0] and filled.sum() > 20
    assert (out["image"][filled] <= 20).all()  # only invented (black) pixels are ignored
    explicit = build_transform({**node, "FILL_MASK": 0}, IGNORE)
    assert explicit.fill_mask == 0  # a value in the node wins


def test_dropouts_keep_their_own_mask_fill():
    # Their fill_mask marks erased content, not invented borders, so segkit leaves it alone.
    assert build_transform({"NAME": "CoarseDropout"}, IGNORE).fill_mask is None
    assert build_transform({"NAME": "MaskDropout"}, IGNORE).fill_mask == 0


def test_masks_keep_nearest_interpolation():
    cfg = get_default_config()
    cfg.INPUT.SIZE = 37
    cfg.INPUT.TRAIN_TRANSFORMS = LAB_RECIPE
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    mask = np.kron(rng.integers(0, 4, (8, 10)), np.ones((8, 8))).astype(np.uint8) * 3  # labels 0,3,6,9
    for train in (True, False):
        pipe = build_transforms(cfg, train=train)
        for _ in range(5):
            out = pipe(image=image, mask=mask)
            assert out["image"].shape == (3, 37, 37) and out["image"].dtype == torch.float32
            assert out["mask"].shape == (37, 37)
            assert set(out["mask"].unique().tolist()) <= {0, 3, 6, 9, IGNORE}
    assert build_transform({"NAME": "Rotate"}).mask_interpolation == 0  # cv2.INTER_NEAREST


def test_unknown_names_and_arguments_are_explained():
    cfg = get_default_config()
    cfg.INPUT.TRAIN_TRANSFORMS = [{"NAME": "HorizontalFlip"}, {"NAME": "Rotat", "LIMIT": 10}]
    with pytest.raises(KeyError, match=r"INPUT.TRAIN_TRANSFORMS\[1\].*Rotat.*Did you mean 'Rotate'"):
        build_transforms(cfg, train=True)
    cfg.INPUT.TRAIN_TRANSFORMS = [{"NAME": "Rotate", "LIMT": 10}]
    with pytest.raises(TypeError, match=r"TRAIN_TRANSFORMS\[0\].*Rotate.*LIMT \(did you mean LIMIT\?\)"):
        build_transforms(cfg, train=True)
    cfg.INPUT.TEST_TRANSFORMS = [{"NAME": "Rotate", "LIMIT": "wide"}]
    with pytest.raises(ValueError, match=r"INPUT.TEST_TRANSFORMS\[0\] \(NAME: Rotate\)"):
        build_transforms(cfg, train=False)
    with pytest.raises(ValueError, match="NAME"):
        build_transform({"P": 0.5})


def test_every_albumentations_transform_is_registered_once():
    assert {"HorizontalFlip", "Rotate", "Affine", "ColorJitter", "ToTensorV2", "NoOp"} <= set(TRANSFORMS.list())
    assert "BasicTransform" not in TRANSFORMS and "DualTransform" not in TRANSFORMS
    count = len(TRANSFORMS)
    importlib.reload(T)  # registering again must neither fail nor duplicate
    assert len(TRANSFORMS) == count


def test_lab_yaml_matches_lab_recipe_and_builds():
    with open(os.path.join(CONFIGS, "lab.yaml")) as f:
        assert yaml.safe_load(f) == {"INPUT": {"TRAIN_TRANSFORMS": LAB_RECIPE}}
    with open(os.path.join(CONFIGS, "none.yaml")) as f:
        assert yaml.safe_load(f) == {"INPUT": {"TRAIN_TRANSFORMS": []}}
    cfg = get_default_config()
    cfg.merge_from_file(os.path.join(CONFIGS, "lab.yaml"))
    names = [type(t).__name__ for t in build_transforms(cfg, train=True).transforms]
    assert names == ["Resize"] + [n["NAME"] for n in LAB_RECIPE] + ["Normalize", "ToTensorV2"]


def test_pipelines_are_seeded_and_denormalize_inverts():
    cfg = get_default_config()
    cfg.INPUT.SIZE, cfg.INPUT.TRAIN_TRANSFORMS = 64, LAB_RECIPE
    image, mask = _square()
    a = [build_transforms(cfg, True)(image=image, mask=mask)["image"] for _ in range(2)]
    assert torch.equal(a[0], a[1])
    plain = build_transforms(cfg, train=False)(image=image, mask=mask)["image"]
    back = denormalize(plain, cfg.INPUT.MEAN, cfg.INPUT.STD)
    assert torch.allclose(back, torch.from_numpy(image).permute(2, 0, 1) / 255.0, atol=1e-5)
    assert denormalize(plain[None], cfg.INPUT.MEAN, cfg.INPUT.STD).shape == (1, 3, 64, 64)
