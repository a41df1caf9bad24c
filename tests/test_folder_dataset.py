"""The folder dataset: splits, mask values and colours, the data check and its label traps, and training
from the example configs."""
import json

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


# ---------------------------------------------------------------- colour masks and label traps
COLOURS = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2, (0, 0, 255): 3}


def make_colour_folder(root, n=6):
    """n 20x28 images with RGB colour masks in examples/folder_colors' colours (white = unlabelled);
    s01's mask is a palette PNG of the same colours. Returns each stem's expected class ids."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    colours = np.array([*COLOURS, (255, 255, 255)], np.uint8)
    truth = {}
    for i in range(n):
        ids = (np.arange(28)[None, :] // 6 + i + np.arange(20)[:, None] // 10) % 5   # 0..4, 4 = white
        Image.fromarray(np.full((20, 28, 3), 30 * i, np.uint8)).save(root / "images" / f"s{i:02d}.png")
        if i == 1:
            palette = Image.fromarray(ids.astype(np.uint8))
            palette.putpalette(colours.flatten().tolist())
            palette.save(root / "masks" / f"s{i:02d}.png")
        else:
            Image.fromarray(colours[ids]).save(root / "masks" / f"s{i:02d}.png")
        truth[f"s{i:02d}"] = np.where(ids == 4, 255, ids).astype(np.uint8)
    return truth


def colours_cfg(root, *extra):
    return load_config("examples/folder_colors", ["DATA.ROOT", str(root), "DATA.VAL_FRACTION", "0.2", *extra])


def test_colour_masks_map_through_mask_colors(tmp_path):
    root = tmp_path / "data"
    truth = make_colour_folder(root)
    cfg = colours_cfg(root)
    for split in ("train", "val", "test"):
        ds = build_dataset(cfg, split)
        for i, name in enumerate(ds.names):
            assert np.array_equal(ds[i]["mask"], truth[name]), name     # palette PNG s01 included
            assert np.array_equal(ds.label(i), truth[name])
    assert check_data(cfg).ok
    # A colour nobody listed: ignored in training, reported with the colours found.
    mask = np.zeros((20, 28, 3), np.uint8)
    mask[:5] = (10, 20, 30)
    Image.fromarray(mask).save(root / "masks" / "s02.png")
    (ds,) = [d for d in (build_dataset(cfg, s) for s in ("train", "val", "test")) if "s02" in d.names]
    assert set(np.unique(ds.label(ds.names.index("s02")))) == {0, 255}
    report = check_data(cfg)
    (problem,) = report.errors
    assert (problem.name, problem.kind) == ("s02", "mask_colors")
    assert problem.found == "has colours (10, 20, 30) not in DATA.DATASET.MASK_COLORS"
    assert "Masks with colours outside DATA.DATASET.MASK_COLORS (1)" in report.format()
    # A greyscale mask read for colours says which key it needs.
    Image.fromarray(np.full((20, 28), 1, np.uint8)).save(root / "masks" / "s02.png")
    (problem,) = check_data(cfg).errors
    assert problem.found.startswith("is a single-channel (greyscale) PNG") and "MASK_VALUES" in problem.expected


def test_mask_values_and_mask_colors_exclude_each_other(tmp_path):
    root = tmp_path / "data"
    make_colour_folder(root, n=2)
    with pytest.raises(ValueError, match=r"MASK_COLORS and MASK_VALUES are both set.*set MASK_VALUES to null "
                                         r"\(\[\] on the command line\)"):
        build_dataset(colours_cfg(root, "DATA.DATASET.MASK_VALUES", "[[0, 0], [255, 1]]"), "train")
    with pytest.raises(ValueError, match="IGNORE_COLOR .* is set but MASK_COLORS is not"):
        build_dataset(folder_cfg(root, "DATA.DATASET.IGNORE_COLOR", "[1, 2, 3]"), "train")
    # The binary example switched to colours on the command line: its MASK_VALUES cleared with [].
    cfg = load_config(str(REPO / "configs" / "examples" / "folder_binary.yaml"),
                      ["DATA.ROOT", str(root), "DATA.DATASET.MASK_VALUES", "[]", "DATA.DATASET.MASK_COLORS",
                       "[[0, 0, 0, 0], [255, 0, 0, 1]]"])
    ds = build_dataset(cfg, "test" if len(build_dataset(cfg, "test")) else "train")
    assert set(np.unique(ds.label(0))) <= {0, 1, 255}
    with pytest.raises(ValueError, match=r"MASK_COLORS\[1\] is \[300, 0, 0, 1\], but it must be an \[r, g, b, class\]"):
        colours_cfg(root, "DATA.DATASET.MASK_COLORS", "[[0, 0, 0, 0], [300, 0, 0, 1]]")


def test_label_traps_are_one_line_with_the_fix(tmp_path):
    root = make_folder(tmp_path / "data", n=4)
    for name in ("s00", "s01", "s02", "s03"):
        (root / "images" / next(p.name for p in (root / "images").iterdir() if p.stem == name)).unlink()
        Image.fromarray(np.zeros((20, 28, 3), np.uint8)).save(root / "images" / f"{name}.png")
    stripes = np.arange(28)[None, :].repeat(20, 0) % 3
    Image.fromarray(np.where(stripes == 1, 255, 0).astype(np.uint8)).save(root / "masks" / "s00.png")   # 0/255
    rgb = np.stack([stripes * 100, stripes * 50, np.zeros_like(stripes)], axis=2).astype(np.uint8)
    Image.fromarray(rgb).save(root / "masks" / "s01.png")                                             # colours
    palette = Image.fromarray(stripes.astype(np.uint8))
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    palette.save(root / "masks" / "s02.png")                                                          # indices
    Image.fromarray(np.full((20, 28), 9, np.uint8)).save(root / "masks" / "s03.png")                  # unmapped
    (root / "test.txt").write_text("s00\ns01\ns02\ns03\n")
    cfg = load_config(str(REPO / "configs" / "examples" / "folder_binary.yaml"),
                      ["DATA.ROOT", str(root), "DATA.DATASET.MASK_VALUES", "[[0, 0], [1, 1], [128, 2]]",
                       "MODEL.NUM_CLASSES", "3"])
    found = {p.name: p for p in check_data(cfg, splits=("test",)).errors}
    assert sorted(found) == ["s00", "s01", "s02", "s03"]
    assert (found["s00"].kind, found["s00"].found) == ("mask_values", "has values {0, 255}: it looks like a 0/255 "
                                                                      "binary mask")
    assert found["s00"].expected.endswith("map 255 with MASK_VALUES [[0, 0], [255, 1]]")
    assert (found["s01"].kind, found["s01"].found) == ("mask_channels", "has 3 channels: it looks like a colour "
                                                                        "(RGB) mask, not class ids")
    assert "DATA.DATASET.MASK_COLORS [[r, g, b, class], …]" in found["s01"].expected
    assert found["s02"].found.startswith("is a palette PNG whose pixel values {2} are palette indices")
    assert "here 2 = (0, 128, 0)" in found["s02"].expected and "MASK_COLORS" in found["s02"].expected
    assert found["s03"].found == "has values {9} not in DATA.DATASET.MASK_VALUES"
    assert all("\n" not in p.line() for p in found.values())


def test_train_one_epoch_from_the_colour_example(tmp_path):
    root = tmp_path / "data"
    make_colour_folder(root, n=8)
    out = tmp_path / "run"
    over = [*tiny_overrides(str(root), str(out), dataset="folder", epochs=1), "SOLVER.AMP.ENABLED", "False",
            "DATA.VAL_FRACTION", "0.2"]
    assert main(["train", "examples/folder_colors", *over]) == 0
    epoch = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert 0.0 <= epoch["val/mIoU"] <= 1.0 and (out / "best.pth").is_file()
