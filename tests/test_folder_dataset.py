"""The folder dataset: splits, mask mapping, the data check, and training from the example config."""
import numpy as np
import pytest
from PIL import Image

from segkit.commands import main
from segkit.config import load_config
from segkit.data import build_dataset
from segkit.data import check_data

from .conftest import REPO, tiny_overrides


def make_folder(root, n=12, seed=0):
    """n images (JPEG, RGBA PNG and greyscale) with 0/255 masks, 128 marking an unlabelled band."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        h, w = int(rng.integers(36, 60)), int(rng.integers(36, 60))
        mask = np.zeros((h, w), np.uint8)
        y, x = int(rng.integers(4, h // 2)), int(rng.integers(4, w // 2))
        mask[y:y + h // 3, x:x + w // 3] = 255
        mask[0, :] = 128
        image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        image[mask == 255] = (220, 40, 40)
        if i % 3 == 0:
            Image.fromarray(image).save(root / "images" / f"s{i:02d}.jpg")
        elif i % 3 == 1:
            Image.fromarray(np.dstack([image, np.full((h, w), 255, np.uint8)]), mode="RGBA").save(
                root / "images" / f"s{i:02d}.png")
        else:
            Image.fromarray(image[..., 0]).save(root / "images" / f"s{i:02d}.bmp")
        Image.fromarray(mask).save(root / "masks" / f"s{i:02d}.png")
    return root


def folder_cfg(root, *extra):
    return load_config(str(REPO / "configs" / "examples" / "folder_binary.yaml"),
                       ["DATA.ROOT", str(root), "DATA.DATASET.IGNORE_VALUE", "128", "DATA.VAL_FRACTION", "0.2",
                        "DATA.DATASET.TEST_FRACTION", "0.25", *extra])


def test_seeded_splits_masks_and_split_files(tmp_path):
    root = make_folder(tmp_path / "data")
    cfg = folder_cfg(root)
    splits = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    names = {s: set(d.names) for s, d in splits.items()}
    assert [len(names[s]) for s in ("train", "val", "test")] == [7, 2, 3]
    assert not (names["train"] & names["val"]) and not (names["train"] | names["val"]) & names["test"]
    assert names == {s: set(build_dataset(cfg, s).names) for s in splits}        # same seed, same split
    item = splits["train"][0]
    assert item["image"].dtype == np.uint8 and item["image"].shape[2] == 3
    assert set(np.unique(item["mask"])) == {0, 1, 255}                           # 128 → ignore_index
    assert item["image"].shape[:2] == item["mask"].shape
    (root / "test.txt").write_text("s00\ns01\n")
    (root / "val.txt").write_text("s02\n")
    assert build_dataset(cfg, "test").names == ["s00", "s01"] and build_dataset(cfg, "val").names == ["s02"]
    assert len(build_dataset(cfg, "train")) == 9


def test_bad_mask_values_pairs_are_user_errors(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    with pytest.raises(ValueError, match=r"MASK_VALUES: entry .* not a \[value, class\] pair"):
        build_dataset(folder_cfg(root, "DATA.DATASET.MASK_VALUES", "[[0, 0], [255]]"), "train")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        build_dataset(folder_cfg(tmp_path / "nowhere"), "train")


def test_check_data_finds_missing_unreadable_and_unmapped(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "masks" / "s03.png").unlink()                                  # missing mask
    (root / "images" / "s04.png").write_bytes(b"\x89PNG truncated")        # unreadable image
    Image.fromarray(np.full((40, 40), 7, np.uint8)).save(root / "masks" / "s05.png")   # value 7 unmapped
    report = check_data(folder_cfg(root))
    kinds = {(p.name, p.kind) for p in report.errors}
    assert {("s03", "missing"), ("s04", "unreadable"), ("s05", "mask_values")} <= kinds
    assert report.bad_names == {"s03", "s04", "s05"}
    text = report.format()
    assert "Masks with values outside DATA.DATASET.MASK_VALUES" in text and "{7}" in text


def test_train_one_epoch_from_the_example_config(tmp_path):
    root = make_folder(tmp_path / "data")
    out = tmp_path / "run"
    over = tiny_overrides(str(root), str(out), dataset="folder", epochs=1)
    argv = [str(REPO / "configs" / "examples" / "folder_binary.yaml"), *over,
            "DATA.DATASET.IGNORE_VALUE", "128", "MODEL.BACKBONE.NAME", "unet", "SOLVER.AMP.ENABLED", "False",
            "HOOKS", "[{'NAME': 'evaluation'}, {'NAME': 'checkpoint', 'MONITOR': 'val/dice', 'MODE': 'max'}]"]
    assert main(["train", *argv]) == 0
    assert (out / "best.pth").is_file()
