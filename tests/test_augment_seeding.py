"""Per-sample augmentation seeds must give every step its own stream.

A pipeline handed one seed used to pass it to every step, so all steps drew the same
first number and fired together in nested sets (the cause of segkit's accuracy gap against
a plain loop; see docs/quality.md). These tests pin the independence and that a
sample's augmentation is still a pure function of its key.
"""
import itertools

import albumentations as A
import numpy as np
import torch

from segkit.config import load_config
from segkit.data.build import TransformedDataset
from segkit.data.sampler import sample_seed
from segkit.data.transforms import LAB_RECIPE, build_transform, build_transforms, seed_transforms

from .conftest import REPO

CONFIG = str(REPO / "configs" / "resnet34_unet_aug_cosine.yaml")


def _fired(pipeline):
    """Which random steps would fire: each step's own first draw against its p."""
    return tuple(int(t.py_random.random() < t.p) for t in pipeline.transforms if 0 < t.p < 1)


def test_lab_steps_fire_independently_with_their_own_probabilities():
    pipeline = build_transforms(load_config(CONFIG, ["INPUT.SIZE", "32"]), train=True)
    n = 3000
    draws = []
    for i in range(n):
        seed_transforms(pipeline, sample_seed(42, i // 100, i))
        draws.append(_fired(pipeline))
    fired = np.array(draws)
    expected = np.array([node["P"] for node in LAB_RECIPE])
    assert np.abs(fired.mean(0) - expected).max() < 0.04
    # Independent steps: every one of the 2^6 on/off combinations occurs, and "none fires"
    # has probability prod(1 - p) = 0.10 (the shared seed gave 0.5 and only 6 combinations).
    assert len(set(draws)) == 2 ** len(LAB_RECIPE)
    none = float((fired.sum(1) == 0).mean())
    assert abs(none - np.prod(1 - expected)) < 0.03
    # Pairwise: P(a and b) = P(a) P(b) within sampling noise (nested sets had P(a and b) = min).
    for a, b in itertools.combinations(range(len(LAB_RECIPE)), 2):
        joint = float((fired[:, a] & fired[:, b]).mean())
        assert abs(joint - expected[a] * expected[b]) < 0.04, (a, b)


def test_same_key_same_augmentation_different_keys_differ():
    rng = np.random.RandomState(0)
    image = (rng.rand(40, 40, 3) * 255).astype(np.uint8)
    mask = (rng.rand(40, 40) > 0.5).astype(np.uint8)

    class Raw(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"image": image, "mask": mask, "name": str(i)}

    ds = TransformedDataset(Raw(), build_transforms(load_config(CONFIG, ["INPUT.SIZE", "40"]), train=True), seed=7)
    a, b = ds[(3, 1)], ds[(3, 1)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    outs = [ds[(e, i)]["image"] for e in range(3) for i in range(4)]
    distinct = {o.numpy().tobytes() for o in outs}
    assert len(distinct) >= 8  # about 1 in 10 samples is left as it is; most keys must differ


def test_nested_pipelines_get_distinct_child_seeds():
    inner = A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=0.5)
    pipeline = A.Compose([inner, build_transform({"NAME": "Rotate", "LIMIT": [-15, 15], "P": 0.5})])
    seed_transforms(pipeline, 123)
    seeds = [pipeline.transforms[0].seed, pipeline.transforms[1].seed, *[t.seed for t in inner.transforms]]
    assert len(set(seeds)) == len(seeds)
    seed_transforms(pipeline, 123)
    assert [pipeline.transforms[0].seed, pipeline.transforms[1].seed] == seeds[:2]
