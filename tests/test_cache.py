"""The decode-and-resize cache: hits, misses, invalidation, equivalence with the uncached
pipeline, and draft-mode JPEG decoding."""
import glob
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.config import load_config
from segkit.data.build import TransformedDataset, build_dataloader
from segkit.data.cache import ResizeCache
from segkit.data import OxfordPet
from segkit.utils.images import decode_rgb
from segkit.data.transforms import build_transforms, resize_transform

from .conftest import tiny_overrides


@pytest.fixture()
def pets(synthetic_root, tmp_path):
    """A private copy of the synthetic dataset, since these tests touch its files."""
    root = tmp_path / "pets"
    shutil.copytree(synthetic_root, root)
    return OxfordPet(str(root), "train", val_fraction=0.0)


def entries(cache_dir):
    return sorted(glob.glob(os.path.join(cache_dir, "resized", "*", "*.npz")))


def test_disk_cache_hit_miss_and_invalidation(pets, tmp_path):
    cache = ResizeCache(24, mode="disk", cache_dir=str(tmp_path / "c"), draft=False)
    first = cache.get(pets, 0)
    assert (cache.misses, cache.hits) == (1, 0) and len(entries(cache.cache_dir)) == 1
    again = cache.get(pets, 0)
    assert (cache.misses, cache.hits) == (1, 1)
    assert np.array_equal(first["image"], again["image"]) and np.array_equal(first["mask"], again["mask"])
    assert again["name"] == pets.names[0] and again["image"].shape == (24, 24, 3) and again["mask"].shape == (24, 24)

    # Another process (a fresh cache object on the same folder) reads the entry.
    other = ResizeCache(24, mode="disk", cache_dir=str(tmp_path / "c"), draft=False)
    other.get(pets, 0)
    assert (other.misses, other.hits) == (0, 1)

    # Editing the image (new content, new mtime) makes the entry stale: decoded again.
    path = pets.image_path(pets.names[0])
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(path)
    trimap = Image.fromarray(np.ones((40, 50), np.uint8))
    trimap.save(pets.trimap_path(pets.names[0]))
    changed = cache.get(pets, 0)
    assert cache.misses == 2 and len(entries(cache.cache_dir)) == 2
    assert abs(int(changed["image"].mean()) - 200) <= 1 and changed["mask"].min() == 1

    # Only touching it (same bytes, new mtime) also re-decodes.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cache.get(pets, 0)
    assert cache.misses == 3

    # Another size is another entry.
    ResizeCache(32, mode="disk", cache_dir=str(tmp_path / "c"), draft=False).get(pets, 0)
    assert len(entries(cache.cache_dir)) == 4
    assert not glob.glob(os.path.join(cache.cache_dir, "resized", "*", ".*.tmp"))


class Stripes:
    """One hand-made 72 x 72 item: columns repeat 0, 0, 210 (so a 3x shrink by area averaging
    gives 70 everywhere, while bilinear sampling would hit the middle column, 0); the mask's
    left half is pet."""

    def __len__(self):
        return 1

    def cache_identity(self, index):
        return ("stripes", index)

    def load_item(self, index, draft_size=None):
        image = np.zeros((72, 72, 3), np.uint8)
        image[:, 2::3] = 210
        mask = np.zeros((72, 72), np.uint8)
        mask[:, :36] = 1
        return {"image": image, "mask": mask, "name": "stripes"}

    def __getitem__(self, index):
        return self.load_item(index)


def test_cache_shrinks_by_area_averaging_and_keeps_mask_labels():
    cache = ResizeCache(24, mode="memory", draft=False)
    item = cache.get(Stripes(), 0)
    assert item["image"].shape == (24, 24, 3) and item["image"].dtype == np.uint8
    assert (item["image"] == 70).all()
    expected_mask = np.zeros((24, 24), np.uint8)
    expected_mask[:, :12] = 1
    assert np.array_equal(item["mask"], expected_mask) and item["name"] == "stripes"
    assert (cache.misses, cache.hits) == (1, 0)


def test_cached_items_equal_the_uncached_pipeline(pets, tmp_path):
    """Without draft decoding the cache is exact: augmented training tensors are bit-identical
    with and without it, key by key."""
    cfg = load_config(None, tiny_overrides(pets.root, str(tmp_path)) + [
        "INPUT.SIZE", "24", "INPUT.TRAIN_TRANSFORMS", "[{'NAME': 'Rotate', 'LIMIT': [-20, 20], 'P': 1.0}]"])
    plain = TransformedDataset(pets, build_transforms(cfg, train=True), seed=3)
    cached = TransformedDataset(pets, build_transforms(cfg, train=True), seed=3,
                                cache=ResizeCache(24, mode="disk", cache_dir=str(tmp_path / "c"), draft=False))
    for key in [(0, 2), (1, 2), (0, 5)]:
        a, b = plain[key], cached[key]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert cached.cache.misses == 2 and cached.cache.hits == 1


def test_memory_cache_writes_no_files_and_none_decodes_each_time(pets, tmp_path):
    cache = ResizeCache(16, mode="memory", cache_dir=str(tmp_path / "c"))
    cache.get(pets, 0), cache.get(pets, 0)
    assert (cache.misses, cache.hits) == (1, 1) and not os.path.exists(cache.cache_dir)
    off = ResizeCache(16, mode="none")
    off.get(pets, 0), off.get(pets, 0)
    assert (off.misses, off.hits) == (0, 0)


def test_damaged_entry_is_rebuilt(pets, tmp_path):
    cache = ResizeCache(16, mode="disk", cache_dir=str(tmp_path / "c"))
    good = cache.get(pets, 0)
    (path,) = entries(cache.cache_dir)
    with open(path, "wb") as f:
        f.write(b"not an npz")
    again = cache.get(pets, 0)
    assert np.array_equal(good["image"], again["image"]) and cache.misses == 2


def test_unknown_cache_mode_is_a_user_error():
    with pytest.raises(ValueError, match="DATA.CACHE is 'ram'"):
        ResizeCache(16, mode="ram")


def test_draft_decode_is_smaller_but_covers_the_size_and_matches(tmp_path):
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    img = np.stack([xx / 640 * 255, yy / 480 * 255, 128 + 60 * np.sin(xx / 23) * np.cos(yy / 31)], -1)
    path = str(tmp_path / "big.jpg")
    Image.fromarray(img.astype(np.uint8)).save(path, quality=92)

    full, size = decode_rgb(path)
    draft, draft_size_wh = decode_rgb(path, draft_size=100)
    assert size == draft_size_wh == (640, 480) and full.shape == (480, 640, 3)
    assert draft.shape == (120, 160, 3)  # 1/4 scale: the smallest that still covers 100 px
    assert min(decode_rgb(path, draft_size=300)[0].shape[:2]) >= 300
    resize = resize_transform(100)
    a = resize(image=full)["image"].astype(np.float32)
    b = resize(image=draft)["image"].astype(np.float32)
    assert np.abs(a - b).mean() < 2.0  # gray levels out of 255


def test_dataloader_uses_the_cache_by_default(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "env_cache"))
    cfg = load_config(None, tiny_overrides(synthetic_root, str(tmp_path)))
    loader = build_dataloader(cfg, "test")
    batch = next(iter(loader))
    assert batch["image"].shape[-2:] == (32, 32) and loader.dataset.cache.mode == "disk"
    assert len(entries(str(tmp_path / "env_cache"))) == loader.batch_size
    off = build_dataloader(load_config(None, tiny_overrides(synthetic_root, str(tmp_path)) + ["DATA.CACHE", "none"]),
                           "test")
    assert off.dataset.cache is None
    assert torch.equal(next(iter(off))["mask"], batch["mask"])
