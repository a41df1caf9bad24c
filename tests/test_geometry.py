"""INPUT.GEOMETRY: the lab's square pipeline untouched, and the keep-ratio pipeline (rescale to a
(long, short) scale, random rescale, crop with cat_max_ratio, pad with the ignore index),
cached, resumable, evaluated at each image's own size whatever the batch, and served alike."""
import hashlib
import shutil

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from segkit.config import load_config
from segkit.data import OxfordPet, build_dataloader, build_transforms
from segkit.data.build import TransformedDataset
from segkit.data.cache import CACHE_VERSION, ResizeCache
from segkit.data.geometry import RandomCropCatMax, RescaleKeepRatio, keep_ratio_scale, pad_batch
from segkit.data.transforms import LAB_RECIPE, build_transform, resize_transform, seed_transforms
from segkit.engine import build_evaluator, prepare_model
from segkit.losses import build_loss
from segkit.utils.images import DECODE_VERSION

from .conftest import REPO, tiny_overrides

KEEP = ["INPUT.GEOMETRY", "keep_ratio", "INPUT.SCALE", "[64, 40]", "INPUT.CROP_SIZE", "[32, 48]",
        "INPUT.RATIO_RANGE", "[0.75, 1.5]"]


def _digest(*tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def test_square_pipeline_is_the_lab_pipeline_step_for_step(synthetic_root):
    """The square geometry builds exactly what segkit built before keep_ratio existed: Resize to
    INPUT.SIZE, the augmentation list, Normalize, ToTensorV2, each step seeded as before, so the
    lab configs give the same batches for the same seed (checked against the old code when this
    was written; here against the old composition, built by hand)."""
    cfg = load_config(str(REPO / "configs" / "unet_aug_cosine.yaml"), ["INPUT.SIZE", "48"])
    built = build_transforms(cfg, train=True)
    reference = A.Compose([resize_transform(48)] + [build_transform(n, 255) for n in LAB_RECIPE]
                          + [A.Normalize(mean=list(cfg.INPUT.MEAN), std=list(cfg.INPUT.STD), max_pixel_value=255.0),
                             built.transforms[-1]])
    assert [type(t).__name__ for t in built.transforms] == [type(t).__name__ for t in reference.transforms]
    pets = OxfordPet(synthetic_root, "train", val_fraction=0.0)
    for index, seed in enumerate((3, 17, 99)):
        item = pets[index]
        seed_transforms(built, seed)
        seed_transforms(reference, seed)
        a = built(image=item["image"], mask=item["mask"])
        b = reference(image=item["image"], mask=item["mask"])
        assert _digest(a["image"], a["mask"]) == _digest(b["image"], b["mask"])


def test_square_cache_keys_are_unchanged():
    """Entries written before keep_ratio existed are still found: the square key has the same parts."""
    cache = ResizeCache(24, mode="memory", draft=True)

    class Data:
        def cache_identity(self, index):
            return ("D", index)

        def load_item(self, index, draft_size=None):
            raise AssertionError

    old = hashlib.sha1(repr((CACHE_VERSION, DECODE_VERSION, ("D", 0), 24, "area-down/linear-up/nearest-mask",
                             True)).encode("utf-8")).hexdigest()
    assert cache.key(Data(), 0) == old


@pytest.mark.parametrize("h,w,scale,expected", [
    (360, 480, (480, 360), (360, 480)),       # CamVid at its own size
    (1024, 2048, (2048, 1024), (1024, 2048)),  # Cityscapes likewise
    (375, 500, (2048, 512), (512, 683)),      # VOC / ADE20K: the short side meets 512
    (500, 375, (512, 2048), (683, 512)),      # portrait, and the order of the scale does not matter
    (100, 1000, (2048, 512), (205, 2048)),    # a panorama: the long side meets 2048 first
])
def test_rescale_follows_mmseg_keep_ratio(h, w, scale, expected):
    t = RescaleKeepRatio(scale)
    out = t(image=np.zeros((h, w, 3), np.uint8), mask=np.zeros((h, w), np.uint8))
    assert out["image"].shape[:2] == expected and out["mask"].shape == expected
    s = keep_ratio_scale(h, w, scale)
    assert expected == (round(h * s), round(w * s))


def test_rescale_takes_its_size_from_the_full_size_mask():
    """The cache hands in a JPEG decoded at 1/2 scale (draft) beside its full-size mask: both must
    land where the full-size image would."""
    t = RescaleKeepRatio((480, 360))
    out = t(image=np.zeros((188, 250, 3), np.uint8), mask=np.zeros((375, 500), np.uint8))
    assert out["image"].shape[:2] == out["mask"].shape == (360, 480)


def test_crop_retries_while_one_class_dominates_and_pads_with_ignore():
    mask = np.zeros((100, 100), np.uint8)
    mask[60:, 60:] = 1  # class 1 only in a corner: few 40x40 crops hold both classes evenly
    image = np.zeros((100, 100, 3), np.uint8)
    plain = RandomCropCatMax(40, 40, cat_max_ratio=1.0)
    strict = RandomCropCatMax(40, 40, cat_max_ratio=0.75)
    shares = {}
    for name, t in (("plain", plain), ("strict", strict)):
        t.set_random_seed(0)
        mixed = 0
        for _ in range(200):
            m = t(image=image, mask=mask)["mask"]
            counts = np.bincount(m.ravel(), minlength=2)
            mixed += counts[1] > 0 and counts.max() / counts.sum() < 0.75
        shares[name] = mixed / 200
    assert shares["plain"] < 0.3 and shares["strict"] > 0.7  # 0.16 and 0.84 with this seed
    small = RandomCropCatMax(40, 48, ignore_index=255, fill_mask=255)
    out = small(image=np.full((30, 20, 3), 9, np.uint8), mask=np.ones((30, 20), np.uint8))
    assert out["mask"].shape == (40, 48) and out["image"].shape == (40, 48, 3)
    assert (out["mask"][:30, :20] == 1).all() and (out["mask"][30:] == 255).all() and (out["mask"][:, 20:] == 255).all()


def test_keep_ratio_training_batches_are_crops_and_every_draw_is_keyed(synthetic_root, tmp_path):
    cfg = load_config(None, tiny_overrides(synthetic_root, str(tmp_path)) + KEEP)
    loader = build_dataloader(cfg, "train")
    batch = next(iter(loader))
    assert batch["image"].shape[-2:] == (32, 48) and batch["mask"].shape[-2:] == (32, 48)
    dataset = loader.dataset
    # (SEED, epoch, index) decides the rescale and the crop: the same key, the same sample, in any order
    a, b = dataset[(2, 5)], dataset[(1, 0)]
    again = dataset[(2, 5)]
    assert torch.equal(a["image"], again["image"]) and torch.equal(a["mask"], again["mask"])
    assert not torch.equal(a["image"], dataset[(3, 5)]["image"])


def test_keep_ratio_cache_keeps_only_what_the_rescale_shrinks(synthetic_root, tmp_path):
    root = tmp_path / "pets"
    shutil.copytree(synthetic_root, root)
    pets = OxfordPet(str(root), "train", val_fraction=0.0)
    shrink = ResizeCache(mode="disk", scale=(32, 24), cache_dir=str(tmp_path / "a"))
    first = shrink.get(pets, 0)
    again = shrink.get(pets, 0)
    assert shrink.hits == 1 and np.array_equal(first["image"], again["image"])
    direct = shrink.load(pets, 0)[0]
    assert np.array_equal(first["mask"], direct["mask"])
    assert first["mask"].shape == RescaleKeepRatio((32, 24)).target_size(*pets[0]["mask"].shape)
    grow = ResizeCache(mode="disk", scale=(512, 400), cache_dir=str(tmp_path / "b"))
    item = grow.get(pets, 0)
    entry = next((tmp_path / "b" / "resized").rglob("*.npz"))
    with np.load(entry) as z:
        assert z.files == ["direct"]  # a marker, not a copy of a frame the rescale enlarges
    again = grow.get(pets, 0)
    assert grow.hits == 1 and np.array_equal(item["image"], again["image"])
    assert item["mask"].shape == RescaleKeepRatio((512, 400)).target_size(*pets[0]["mask"].shape)


def _evaluate(cfg, batch_size):
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TEST.BATCH_SIZE = batch_size
    torch.manual_seed(0)
    model = prepare_model(cfg, torch.device("cpu"))
    evaluator = build_evaluator(cfg, build_loss(cfg))
    return evaluator.run(model, build_dataloader(cfg, "test"), torch.device("cpu"))


def test_keep_ratio_evaluation_scores_each_image_at_its_own_size_whatever_the_batch(synthetic_root, tmp_path):
    """Images of different sizes share a padded batch; padding changes no score: batch 8 gives
    what one image at a time gives, and the per-class table comes from the same pixels."""
    cfg = load_config(None, tiny_overrides(synthetic_root, str(tmp_path)) + KEEP +
                      ["MODEL.NUM_CLASSES", "3", "DATA.DATASET.BOUNDARY", "class", "SOLVER.AMP.ENABLED", "False"])
    batch = next(iter(build_dataloader(cfg, "test")))
    assert len({tuple(s) for s in batch["size"].tolist()}) > 1  # the sizes differ within the batch
    one, eight = _evaluate(cfg, 1), _evaluate(cfg, 8)
    assert one["resolution"] == "original" and one["n"] == eight["n"]
    for key in ("dice_mean", "iou_mean", "loss_mean", "mIoU", "aAcc"):
        assert eight[key] == pytest.approx(one[key], abs=1e-5)
    assert eight["confusion"] == one["confusion"]
    pixels = sum(r["height"] * r["width"] for r in _records(cfg))
    assert np.array(one["confusion"]).sum() <= pixels


def _records(cfg):
    from segkit.data import build_dataset

    return [{"height": d["mask"].shape[0], "width": d["mask"].shape[1]} for d in build_dataset(cfg, "test")]


def test_keep_ratio_predictor_batches_images_of_any_size(synthetic_root, tmp_path):
    from segkit.inference import Predictor

    from .conftest import untrained_checkpoint

    cfg_file, ckpt, _ = untrained_checkpoint(tmp_path, tiny_overrides(synthetic_root, str(tmp_path)) + KEEP +
                                             ["SOLVER.AMP.ENABLED", "False"])
    predictor = Predictor(str(cfg_file), str(ckpt), batch_size=4)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((30, 70), (64, 33), (41, 41))]
    together = predictor.predict_batch(images)
    for image, batched in zip(images, together):
        alone = predictor(image)
        assert batched.mask.shape == image.shape[:2]
        np.testing.assert_allclose(batched.prob, alone.prob, atol=1e-4)  # convolution blocking differs by size
    assert together[0].classes == ("background", "pet") and together[0].colour.shape == (30, 70, 3)


def test_pad_batch_pads_bottom_right():
    out = pad_batch([torch.ones(2, 3), torch.ones(4, 1)], 7)
    assert out.shape == (2, 4, 3) and out[0, 2:].eq(7).all() and out[1, :, 1:].eq(7).all()


def test_geometry_keys_are_validated():
    from segkit.config import ConfigError

    with pytest.raises(ConfigError, match="INPUT.RATIO_RANGE"):
        load_config(None, ["INPUT.RATIO_RANGE", "[2.0, 0.5]"])
    with pytest.raises(ConfigError, match="INPUT.GEOMETRY"):
        load_config(None, ["INPUT.GEOMETRY", "letterbox"])
    with pytest.raises(ConfigError, match="TEST.SCALE"):
        load_config(None, ["INPUT.GEOMETRY", "keep_ratio", "TEST.MODE", "slide", "TEST.SCALE", "0.5"])
    cfg = load_config(None, ["INPUT.CROP_SIZE", "256"])
    assert cfg.INPUT.CROP_SIZE == 256
