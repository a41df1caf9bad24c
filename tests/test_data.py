"""Datasets and loaders: the Oxford layout, trimap → mask, odd image files, splits, errors."""
import concurrent.futures
import filecmp
import os

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.config.defaults import get_default_config
from segkit.data import build_dataloader, build_dataset
from segkit.data import OxfordPet
from segkit.utils.images import load_rgb
from segkit.data.synthetic import SyntheticPets, generate_synthetic_pets
from segkit.registry import DATASETS

from .conftest import PET_ROOT
from .conftest import needs_pet_sample as needs_pet


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return generate_synthetic_pets(str(tmp_path_factory.mktemp("synth") / "pets"), num_trainval=24,
                                   num_test=8, image_size=48, seed=3)


def _write_pet(root, names, trimaps, images=None, lists=("trainval", "test")):
    """A hand-made Oxford folder: given trimaps (uint8 arrays), grey images unless given."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations", "trimaps"), exist_ok=True)
    for i, (name, trimap) in enumerate(zip(names, trimaps)):
        Image.fromarray(trimap).save(os.path.join(root, "annotations", "trimaps", f"{name}.png"))
        image = images[i] if images else Image.new("RGB", trimap.shape[::-1], (90, 90, 90))
        image.save(os.path.join(root, "images", f"{name}.jpg"), format=image.format or "JPEG")
    for split in lists:
        with open(os.path.join(root, "annotations", f"{split}.txt"), "w") as f:
            f.write("# a comment line\n\n" + "\n".join(f"{n} 1 1 1" for n in names) + "\n")
    return str(root)


def _cfg(root, **data):
    cfg = get_default_config()
    cfg.DATA.ROOT, cfg.DATA.NUM_WORKERS, cfg.INPUT.SIZE = str(root), 0, 32
    cfg.SOLVER.BATCH_SIZE, cfg.TEST.BATCH_SIZE = 4, 3
    for k, v in data.items():
        setattr(cfg.DATA, k, v)
    return cfg


# ---------------------------------------------------------------- synthetic generation
def test_synthetic_writes_official_layout(synth_root):
    ann = os.path.join(synth_root, "annotations")
    for f in ("trainval.txt", "test.txt", "list.txt"):
        assert os.path.isfile(os.path.join(ann, f))
    lines = open(os.path.join(ann, "trainval.txt")).read().split("\n")[:-1]
    assert len(lines) == 24 and all(len(line.split()) == 4 for line in lines)
    assert len(open(os.path.join(ann, "test.txt")).read().split()) == 8 * 4
    sizes = set()
    for line in lines:
        name = line.split()[0]
        with Image.open(os.path.join(synth_root, "images", f"{name}.jpg")) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
            sizes.add(im.size)
        trimap = np.array(Image.open(os.path.join(ann, "trimaps", f"{name}.png")))
        assert trimap.dtype == np.uint8 and set(np.unique(trimap)) == {1, 2, 3}
        assert trimap.shape == im.size[::-1]
    assert len(sizes) > 1 and any(w != h for w, h in sizes)
    assert os.path.isfile(os.path.join(synth_root, "synthetic.json"))


def test_synthetic_is_deterministic_and_regenerates(tmp_path):
    a = generate_synthetic_pets(str(tmp_path / "a"), 4, 2, 40, seed=7)
    b = generate_synthetic_pets(str(tmp_path / "b"), 4, 2, 40, seed=7)
    c = generate_synthetic_pets(str(tmp_path / "c"), 4, 2, 40, seed=8)
    names = sorted(os.listdir(os.path.join(a, "images")))
    assert len(names) == 6
    assert filecmp.cmpfiles(os.path.join(a, "images"), os.path.join(b, "images"), names, shallow=False)[0] == names
    assert not filecmp.cmp(os.path.join(a, "images", names[0]), os.path.join(c, "images", names[0]), shallow=False)
    mtime = os.path.getmtime(os.path.join(a, "synthetic.json"))
    generate_synthetic_pets(a, 4, 2, 40, seed=7)  # same parameters: reused as is
    assert os.path.getmtime(os.path.join(a, "synthetic.json")) == mtime
    generate_synthetic_pets(a, 6, 2, 40, seed=7)  # different parameters: replaced
    assert len(os.listdir(os.path.join(a, "images"))) == 8
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]  # no temp folders left behind


def test_synthetic_refuses_foreign_folder_and_survives_concurrency(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError, match="precious|synthetic.json"):
        generate_synthetic_pets(str(foreign), 2, 1, 32)
    target = str(tmp_path / "shared")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        roots = list(pool.map(lambda _: generate_synthetic_pets(target, 6, 2, 32, seed=1), range(3)))
    assert roots == [target] * 3 and len(os.listdir(os.path.join(target, "images"))) == 8
    assert sorted(os.listdir(tmp_path)) == ["mine", "shared"]


def test_synthetic_dataset_builds_from_config(tmp_path):
    cfg = _cfg(tmp_path / "gen")
    cfg.DATA.DATASET.NAME = "synthetic"
    cfg.DATA.DATASET.NUM_TRAINVAL, cfg.DATA.DATASET.NUM_TEST, cfg.DATA.DATASET.IMAGE_SIZE = 10, 3, 32
    ds = build_dataset(cfg, "train")
    assert isinstance(ds, SyntheticPets) and len(ds) == 9
    assert len(build_dataset(cfg, "test")) == 3
    assert {"oxford_pet", "synthetic"} <= set(DATASETS.list())


# ---------------------------------------------------------------- splits
def test_splits_are_deterministic_disjoint_and_complete(synth_root):
    train = OxfordPet(synth_root, "train", val_fraction=0.25, seed=5)
    val = OxfordPet(synth_root, "val", val_fraction=0.25, seed=5)
    test = OxfordPet(synth_root, "test")
    trainval = [line.split()[0] for line in open(os.path.join(synth_root, "annotations", "trainval.txt"))]
    assert (len(train), len(val), len(test)) == (18, 6, 8)
    assert not set(train.names) & set(val.names) and set(train.names) | set(val.names) == set(trainval)
    assert not set(test.names) & set(trainval)
    assert OxfordPet(synth_root, "val", val_fraction=0.25, seed=5).names == val.names
    assert OxfordPet(synth_root, "val", val_fraction=0.25, seed=6).names != val.names
    assert len(OxfordPet(synth_root, "val", val_fraction=0.0)) == 0
    assert len(OxfordPet(synth_root, "train", val_fraction=0.0)) == 24


def test_items_follow_the_dataset_contract(synth_root):
    ds = OxfordPet(synth_root, "train")
    item = ds[0]
    assert set(item) == {"image", "mask", "name"} and item["name"] == ds.names[0]
    assert item["image"].dtype == np.uint8 and item["image"].ndim == 3 and item["image"].shape[2] == 3
    assert item["mask"].dtype == np.uint8 and item["mask"].shape == item["image"].shape[:2]
    assert set(np.unique(item["mask"])) == {0, 1}
    assert ds.image_path(ds.names[0]).endswith(f"images/{ds.names[0]}.jpg")


# ---------------------------------------------------------------- trimap → mask
TRIMAP = np.array([[1, 2, 3, 0], [3, 1, 2, 7]], dtype=np.uint8)


@pytest.mark.parametrize("boundary, expected", [
    ("foreground", [[1, 0, 1, 255], [1, 1, 0, 255]]),
    ("background", [[1, 0, 0, 255], [0, 1, 0, 255]]),
    ("ignore", [[1, 0, 255, 255], [255, 1, 0, 255]]),
])
def test_boundary_modes_give_exact_masks(tmp_path, boundary, expected):
    root = _write_pet(tmp_path, ["tiny"], [TRIMAP])
    mask = OxfordPet(root, "test", boundary=boundary)[0]["mask"]
    np.testing.assert_array_equal(mask, np.array(expected, dtype=np.uint8))
    mask = OxfordPet(root, "test", boundary=boundary, ignore_index=99)[0]["mask"]
    np.testing.assert_array_equal(mask, np.where(np.array(expected) == 255, 99, expected))


# ---------------------------------------------------------------- errors
def test_bad_arguments_are_named(synth_root):
    with pytest.raises(ValueError, match=r"'bogus'.*'train', 'val', 'test'"):
        OxfordPet(synth_root, "bogus")
    with pytest.raises(ValueError, match=r"'edge'.*'foreground', 'background', 'ignore'"):
        OxfordPet(synth_root, "train", boundary="edge")
    with pytest.raises(ValueError, match="ignore_index"):
        OxfordPet(synth_root, "train", ignore_index=1)


def test_missing_root_and_lists_are_explained(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist.*DATA.ROOT.*DOWNLOAD"):
        OxfordPet(missing, "train")
    with pytest.raises(FileNotFoundError, match="DATA.ROOT is empty"):
        OxfordPet("", "train")
    root = _write_pet(tmp_path / "nolist", ["a"], [TRIMAP], lists=("test",))
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        OxfordPet(root, "train")


def test_missing_trimap_fails_at_construction_naming_it(tmp_path):
    root = _write_pet(tmp_path, ["a", "b"], [TRIMAP, TRIMAP])
    trimap = os.path.join(root, "annotations", "trimaps", "b.png")
    os.remove(trimap)
    with pytest.raises(FileNotFoundError) as err:
        OxfordPet(root, "test")
    assert trimap in str(err.value)


def test_unreadable_and_mismatched_files_name_the_path(tmp_path):
    root = _write_pet(tmp_path, ["junk", "small"], [TRIMAP, TRIMAP])
    junk = os.path.join(root, "images", "junk.jpg")
    with open(junk, "wb") as f:
        f.write(b"not an image at all")
    Image.new("RGB", (9, 9)).save(os.path.join(root, "images", "small.jpg"))
    ds = OxfordPet(root, "test")
    with pytest.raises(RuntimeError, match=junk):
        ds[0]
    with pytest.raises(ValueError, match="small.jpg.*9x9.*small.png.*4x2"):
        ds[1]
    os.remove(junk)
    with pytest.raises(FileNotFoundError, match=junk):
        ds[0]


# ---------------------------------------------------------------- odd image files
def _odd_images():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    gif = Image.fromarray(rgb).convert("P")
    gif.format = "GIF"
    rgba = Image.fromarray(np.dstack([rgb, np.full((6, 8), 128, np.uint8)]), "RGBA")
    rgba.format = "PNG"
    grey = Image.fromarray(rgb[..., 0], "L")
    cmyk = Image.fromarray(rgb).convert("CMYK")
    deep = Image.fromarray((np.arange(48).reshape(6, 8) * 1365).astype(np.uint16))
    deep.format = "PNG"
    return {"gif": gif, "rgba": rgba, "grey": grey, "cmyk": cmyk, "deep16": deep}


def test_every_real_world_format_loads_as_rgb(tmp_path):
    odd = _odd_images()
    root = _write_pet(tmp_path, list(odd), [np.full((6, 8), 1, np.uint8)] * len(odd), images=list(odd.values()))
    assert Image.open(os.path.join(root, "images", "gif.jpg")).format == "GIF"
    assert Image.open(os.path.join(root, "images", "deep16.jpg")).mode.startswith("I")
    ds = OxfordPet(root, "test")
    for i, name in enumerate(ds.names):
        image = ds[i]["image"]
        assert image.shape == (6, 8, 3) and image.dtype == np.uint8, name
    deep = load_rgb(os.path.join(root, "images", "deep16.jpg"))
    # 16-bit values are scaled to 8 bits, not clipped to white.
    assert deep[0, 0, 0] == 0 and deep[-1, -1, 0] == round(47 * 1365 / 257) and deep.mean() < 200


def test_torchvision_download_folder_is_found(tmp_path):
    _write_pet(tmp_path / "oxford-iiit-pet", ["a"], [TRIMAP])
    ds = OxfordPet(str(tmp_path), "test")
    assert ds.root.endswith("oxford-iiit-pet") and len(ds) == 1


def test_download_uses_torchvision_layout(tmp_path, monkeypatch):
    """No network: a stand-in for torchvision writes what the real one would."""
    import torchvision.datasets

    calls = []

    class FakeOxfordIIITPet:
        def __init__(self, root, split, target_types, download):
            calls.append((str(root), target_types, download))
            _write_pet(os.path.join(root, "oxford-iiit-pet"), ["a"], [TRIMAP])

    monkeypatch.setattr(torchvision.datasets, "OxfordIIITPet", FakeOxfordIIITPet)
    ds = OxfordPet(str(tmp_path / "pets"), "test", download=True)
    assert ds.root == str(tmp_path / "pets" / "oxford-iiit-pet") and len(ds) == 1
    assert calls == [(str(tmp_path / "pets"), "segmentation", True)]
    assert OxfordPet(str(tmp_path / "pets"), "test").root == ds.root  # found again without download
    ds = OxfordPet(str(tmp_path / "x" / "oxford-iiit-pet"), "test", download=True)
    assert ds.root == str(tmp_path / "x" / "oxford-iiit-pet") and calls[-1][0] == str(tmp_path / "x")


# ---------------------------------------------------------------- loaders
def test_dataloader_batches_and_reproducibility(synth_root):
    cfg = _cfg(synth_root, VAL_FRACTION=0.25)
    cfg.INPUT.TRAIN_TRANSFORMS = [{"NAME": "Rotate", "LIMIT": 30, "P": 1.0}]
    train = build_dataloader(cfg, "train")
    batch = next(iter(train))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 32, 32) and batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 255} and len(batch["name"]) == 4
    assert len(train) == 18 // 4 and train.drop_last
    again = next(iter(build_dataloader(cfg, "train")))
    assert again["name"] == batch["name"] and torch.equal(again["image"], batch["image"])
    val = build_dataloader(cfg, "val")
    assert [len(b["name"]) for b in val] == [3, 3] and not val.drop_last
    assert [b["name"] for b in build_dataloader(cfg, "test")][0] == OxfordPet(synth_root, "test").names[:3]


def test_dataloader_workers_are_seeded_reproducibly(synth_root):
    cfg = _cfg(synth_root, NUM_WORKERS=1)
    cfg.INPUT.TRAIN_TRANSFORMS = [{"NAME": "Rotate", "LIMIT": 30, "P": 1.0}]
    first = [b["image"] for b in build_dataloader(cfg, "train", shuffle=False)]
    second = [b["image"] for b in build_dataloader(cfg, "train", shuffle=False)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_empty_split_is_an_error_naming_it(synth_root):
    with pytest.raises(ValueError, match=f"'val'.*{synth_root}.*VAL_FRACTION"):
        build_dataloader(_cfg(synth_root, VAL_FRACTION=0.0), "val")


# ---------------------------------------------------------------- the real sample
@needs_pet
def test_real_sample_splits():
    train, val = OxfordPet(PET_ROOT, "train"), OxfordPet(PET_ROOT, "val")
    assert len(train) + len(val) == 200 and len(val) == 20
    assert len(OxfordPet(PET_ROOT, "test")) == 198


@needs_pet
@pytest.mark.parametrize("name", ["Abyssinian_34", "Abyssinian_5"])
def test_real_sample_odd_files(name):
    # Abyssinian_34 (a GIF, its trimap all background) is in no official list: read it by name.
    ds = OxfordPet(PET_ROOT, "test")
    image, mask = load_rgb(ds.image_path(name)), ds.load_mask(name)
    with Image.open(ds.trimap_path(name)) as trimap:
        assert image.shape == (trimap.size[1], trimap.size[0], 3)
    assert image.dtype == np.uint8 and mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 1}
    if name in ds.names:
        assert ds[ds.names.index(name)]["image"].shape == image.shape


@needs_pet
def test_real_sample_loader():
    cfg = _cfg(PET_ROOT)
    cfg.SOLVER.BATCH_SIZE = 8
    batch = next(iter(build_dataloader(cfg, "train")))
    assert batch["image"].shape == (8, 3, 32, 32) and batch["mask"].shape == (8, 32, 32)
    assert batch["mask"].dtype == torch.int64 and set(batch["mask"].unique().tolist()) <= {0, 1}
    for b in build_dataloader(cfg, "val"):
        assert b["image"].dtype == torch.float32 and set(b["mask"].unique().tolist()) <= {0, 1}
