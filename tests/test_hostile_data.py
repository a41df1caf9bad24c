"""Hostile inputs: split-file names that point outside DATA.ROOT, EXIF-rotated photos, split
files with a byte-order mark, folder stems with spaces."""
import builtins
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from segkit.config import load_config
from segkit.data import OxfordPet, build_dataset, check_data
from segkit.data import cache as cache_module
from segkit.data.cache import ResizeCache
from segkit.data.problems import unsafe_name
from segkit.data.synthetic import generate_synthetic_pets
from segkit.utils.images import decode_image, load_rgb, orient_array, read_label, to_rgb

from .conftest import REPO, tiny_overrides

UNET = str(REPO / "configs" / "unet_aug_cosine.yaml")
FOLDER = str(REPO / "configs" / "examples" / "folder_binary.yaml")
ORIENTATION = 0x0112
# orientation → the orientation that undoes it (6 and 8 are each other's inverse; the rest their own)
INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[ORIENTATION] = orientation
    return tags.tobytes()


def scene(h=24, w=40, seed=0):
    """An upright picture (dark noise, one red rectangle in its top-left part) and its 0/255 mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[2:h // 2, 3:w // 2] = 255
    image[mask == 255] = (230, 30, 30)
    return image, mask


def stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for an ``upright`` picture tagged with ``orientation``."""
    return orient_array(upright, INVERSE[orientation])


def assert_aligned(image, mask, upright_mask, fg=1):
    """The image is upright and its red rectangle lies exactly where the mask says."""
    assert image.shape[:2] == mask.shape == upright_mask.shape
    assert np.array_equal(mask == fg, upright_mask == 255)
    assert image[mask == fg, 0].mean() > 180 and image[mask != fg, 0].mean() < 90


# ---------------------------------------------------------------- names outside the root
@pytest.fixture
def outside(tmp_path):
    """A real image and trimap outside every dataset root: what a hostile split file points at."""
    src = generate_synthetic_pets(str(tmp_path / "src"), num_trainval=1, num_test=1, image_size=32, seed=1)
    name = OxfordPet(src, "test").names[0]
    folder = tmp_path / "outside"
    folder.mkdir()
    shutil.copy(os.path.join(src, "images", f"{name}.jpg"), folder / "secret.jpg")
    shutil.copy(os.path.join(src, "annotations", "trimaps", f"{name}.png"), folder / "secret.png")
    return folder


@pytest.fixture
def touched(outside, monkeypatch):
    """Every path under ``outside`` that is opened, stat'ed or decoded from now on."""
    seen = []

    def watch(fn):
        def wrapper(path, *args, **kwargs):
            if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(str(outside)):
                seen.append(os.fspath(path))
            return fn(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", watch(builtins.open))
    monkeypatch.setattr(os, "stat", watch(os.stat))
    monkeypatch.setattr(Image, "open", watch(Image.open))
    return seen


@pytest.fixture
def hostile_pets(tmp_path, outside):
    """A synthetic Oxford root whose test.txt names the outside image by absolute path (line 5)
    and whose trainval.txt names it by '../../outside/secret' (line 9)."""
    root = generate_synthetic_pets(str(tmp_path / "pets"), num_trainval=8, num_test=4, image_size=32, seed=2)
    absolute = str(outside / "secret")
    with open(os.path.join(root, "annotations", "test.txt"), "a") as f:
        f.write(f"{absolute} 1 1 1\n")
    with open(os.path.join(root, "annotations", "trainval.txt"), "a") as f:
        f.write("../../outside/secret 1 1 1\n")
    # Without the check, both would open the outside files:
    assert os.path.exists(os.path.join(root, "images", "../../outside/secret.jpg"))
    return root, absolute


def test_unsafe_name_rule():
    for name in ("Abyssinian_1", "my cat", "a.b", "..foo", "foo..", "."):
        assert unsafe_name(name) == "", name
    assert unsafe_name("/etc/passwd") == "is an absolute path"
    assert unsafe_name("C:\\data\\x") == "is an absolute path"
    assert unsafe_name("../x") == unsafe_name("a/../b") == unsafe_name("..") == "has a '..' component"
    assert unsafe_name("a/b") == unsafe_name("a\\b") == "holds a path separator"
    assert unsafe_name("a\0b") == "holds a NUL character"


def test_check_data_names_the_lines_and_opens_nothing_outside(hostile_pets, touched, segkit_cli, tmp_path):
    root, absolute = hostile_pets
    res = segkit_cli("check-data", UNET, *tiny_overrides(root, str(tmp_path / "run")), check=False)
    assert res.returncode == 1
    assert (f"annotations/test.txt (sample '{absolute}'): line 5 names '{absolute}', which is an absolute path; "
            "expected a bare name of a file inside DATA.ROOT") in res.stdout
    assert ("annotations/trainval.txt (sample '../../outside/secret'): line 9 names '../../outside/secret', "
            "which has a '..' component") in res.stdout
    assert "Split-file names that are not bare file names inside DATA.ROOT; nothing opened for them (2):" in res.stdout
    assert "2 problems in 2 of 14 samples (train 8, val 1, test 5)" in res.stdout
    assert touched == []
    report = check_data(load_config(UNET, tiny_overrides(root, str(tmp_path / "run"))))
    assert report.bad_names == {absolute, "../../outside/secret"} and not report.split_problems
    assert touched == []
    load_rgb(os.path.join(root, "images", "../../outside/secret.jpg"))
    assert touched, "the watch sees an outside read"


def test_training_stops_or_skips_and_opens_nothing_outside(hostile_pets, touched, segkit_cli, tmp_path):
    root, absolute = hostile_pets
    opts = tiny_overrides(root, str(tmp_path / "run"), epochs=1)
    res = segkit_cli("train", UNET, *opts, check=False)
    assert res.returncode == 2
    assert "Data check of" in res.stderr and f"line 5 names '{absolute}'" in res.stderr
    assert "line 9 names '../../outside/secret'" in res.stderr and "DATA.SKIP_BAD True" in res.stderr
    # Without the scan, the strict build refuses them, naming the line.
    res = segkit_cli("train", UNET, *opts, "DATA.CHECK", "False", check=False)
    assert res.returncode == 2 and "nothing was opened for them" in res.stderr
    assert "trainval.txt: line 9 names '../../outside/secret'" in res.stderr
    with pytest.raises(ValueError, match=f"test.txt: line 5 names '{absolute}', which is an absolute path"):
        OxfordPet(root, "test")
    # DATA.SKIP_BAD trains without them.
    segkit_cli("train", UNET, *opts, "DATA.SKIP_BAD", "True")
    assert os.path.isfile(tmp_path / "run" / "last.pth")
    assert touched == []


def test_folder_split_names_outside_the_root(tmp_path, outside, touched):
    root = tmp_path / "data"
    write_folder(root, {"s00": 1, "s01": 1})
    absolute = str(outside / "secret")
    (root / "test.txt").write_text(f"s00\n{absolute}\n../../outside/secret\nsub/s01\n")
    cfg = load_config(FOLDER, ["DATA.ROOT", str(root)])
    report = check_data(cfg, splits=("test",))
    lines = [p.line(report.root) for p in report.errors]
    assert lines == [f"test.txt (sample '{absolute}'): line 2 names '{absolute}', which is an absolute path; "
                     "expected a bare name of a file inside DATA.ROOT: no absolute path, no '..', no '/' or '\\' "
                     "(the file it names was not opened)",
                     f"test.txt (sample '../../outside/secret'): line 3 names '../../outside/secret', which has a "
                     f"'..' component; expected {report.errors[0].expected}",
                     f"test.txt (sample 'sub/s01'): line 4 names 'sub/s01', which holds a path separator; "
                     f"expected {report.errors[0].expected}"]
    with pytest.raises(ValueError, match="3 name"):
        build_dataset(cfg, "test")
    assert build_dataset(cfg, "test", exclude=report.bad_names).names == ["s00"]
    assert touched == []


def test_symlinked_roots_and_folders_still_work(tmp_path):
    """The rule is on names: a root that is a symlink, or whose images/ and trimaps/ are symlinks
    into another dataset (segkit ablate's per-breed roots), reads as before."""
    real = generate_synthetic_pets(str(tmp_path / "real"), num_trainval=8, num_test=2, image_size=32, seed=4)
    linked = tmp_path / "linked"
    (linked / "annotations").mkdir(parents=True)
    os.symlink(os.path.join(real, "images"), linked / "images")
    os.symlink(os.path.join(real, "annotations", "trimaps"), linked / "annotations" / "trimaps")
    for list_name in ("trainval.txt", "test.txt"):
        shutil.copy(os.path.join(real, "annotations", list_name), linked / "annotations" / list_name)
    os.symlink(linked, tmp_path / "alias")
    for root in (linked, tmp_path / "alias"):
        cfg = load_config(UNET, tiny_overrides(str(root), str(tmp_path / "run")))
        report = check_data(cfg)
        assert report.ok, report.format()
        assert len(OxfordPet(str(root), "test")) == 2


# ---------------------------------------------------------------- split-file text
def test_bom_split_files(tmp_path):
    root = generate_synthetic_pets(str(tmp_path / "pets"), num_trainval=8, num_test=3, image_size=32, seed=6)
    path = os.path.join(root, "annotations", "test.txt")
    names = OxfordPet(root, "test").names
    text = open(path, encoding="utf-8").read()
    open(path, "w", encoding="utf-8-sig").write(text)
    assert open(path, "rb").read(3) == b"\xef\xbb\xbf"
    assert OxfordPet(root, "test").names == names
    open(path, "w", encoding="utf-8-sig").write("# names\n\n" + text)  # a comment on the BOM's line stays one
    assert OxfordPet(root, "test").names == names
    assert check_data(load_config(UNET, tiny_overrides(root, str(tmp_path / "run")))).ok

    folder = tmp_path / "data"
    write_folder(folder, {"a": 1, "b": 1})
    (folder / "test.txt").write_text("\ufeffa\n", encoding="utf-8")
    assert build_dataset(load_config(FOLDER, ["DATA.ROOT", str(folder)]), "test").names == ["a"]


def test_folder_stem_with_a_space(tmp_path):
    root = tmp_path / "data"
    write_folder(root, {"my cat": 1, "dog 2": 1, "plain": 1})
    (root / "test.txt").write_text("my cat\n  dog 2  \n# not a stem\n\n")
    cfg = load_config(FOLDER, ["DATA.ROOT", str(root)])
    test = build_dataset(cfg, "test")
    assert test.names == ["my cat", "dog 2"]
    assert test[0]["name"] == "my cat" and test[0]["mask"].max() == 1
    assert check_data(cfg, splits=("test",)).ok


# ---------------------------------------------------------------- EXIF orientation
def write_folder(root, orientations, mask_mode="stored", h=24, w=40):
    """images/<stem>.jpg stored as a camera would for each orientation (with the tag), and
    masks/<stem>.png: "stored" aligned with the stored pixels (no tag), "upright" drawn on the
    upright picture (no tag), "upright-tagged" upright with an explicit orientation-1 tag."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    truth = {}
    for i, (stem, o) in enumerate(orientations.items()):
        image, mask = scene(h, w, seed=i)
        Image.fromarray(stored(image, o)).save(root / "images" / f"{stem}.jpg", quality=95, exif=exif(o))
        if mask_mode == "stored":
            Image.fromarray(stored(mask, o)).save(root / "masks" / f"{stem}.png")
        elif mask_mode == "upright":
            Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
        else:
            Image.fromarray(mask).save(root / "masks" / f"{stem}.png", exif=exif(1))
        truth[stem] = (image, mask)
    return truth


def test_orientation_transposes_match_pil_for_every_tag(tmp_path):
    upright, mask = scene()
    for o in range(1, 9):
        assert np.array_equal(orient_array(stored(upright, o), o), upright), o
        path = tmp_path / f"o{o}.png"
        Image.fromarray(stored(upright, o)).save(path, exif=exif(o))
        decoded = decode_image(str(path))
        assert np.array_equal(decoded.rgb, upright) and decoded.size == (40, 24) and decoded.orientation == o
        assert np.array_equal(to_rgb(Image.open(path)), upright)  # an opened PIL image too
        label = tmp_path / f"m{o}.png"
        Image.fromarray(stored(mask, o)).save(label)
        assert np.array_equal(read_label(str(label), o), mask)  # no tag of its own: turned like the image
        Image.fromarray(mask).save(label, exif=exif(1))
        assert np.array_equal(read_label(str(label), o), mask)  # its own tag wins
    # No tag, or an invalid one (the Oxford sample has some 0s): as stored.
    Image.fromarray(upright).save(tmp_path / "zero.jpg", quality=95, exif=exif(0))
    assert decode_image(str(tmp_path / "zero.jpg")).orientation == 1


def test_rotated_photo_checks_trains_and_predicts_upright(tmp_path, segkit_cli):
    root = tmp_path / "data"
    truth = write_folder(root, {f"s{i}": o for i, o in enumerate([6, 6, 8, 3, 1, 6, 5, 6])})
    with Image.open(root / "images" / "s0.jpg") as im:
        assert im.size == (24, 40) and im.getexif()[ORIENTATION] == 6  # stored sideways
    (root / "train.txt").write_text("s0\ns1\ns2\ns3\ns4\ns5\n")
    (root / "val.txt").write_text("s6\n")
    (root / "test.txt").write_text("s7\n")
    out = tmp_path / "run"
    opts = [*tiny_overrides(str(root), str(out), dataset="folder", epochs=1), "SOLVER.AMP.ENABLED", "False",
            "HOOKS", "[{'NAME': 'evaluation'}, {'NAME': 'checkpoint', 'MONITOR': 'val/dice', 'MODE': 'max'}]"]
    cfg = load_config(FOLDER, opts)
    # check
    report = check_data(cfg)
    assert report.ok, report.format()
    # train: every item upright, image and mask aligned
    for split in ("train", "val", "test"):
        ds = build_dataset(cfg, split)
        for i, name in enumerate(ds.names):
            item = ds[i]
            assert_aligned(item["image"], item["mask"], truth[name][1])
    segkit_cli("train", FOLDER, *opts)
    # predict: the Predictor (path, PIL image, array) and `segkit infer` work on the upright picture
    from segkit.inference import Predictor

    predictor = Predictor(str(out / "config.yaml"), str(out / "last.pth"), device="cpu")
    path = str(root / "images" / "s7.jpg")
    by_path = predictor.predict(path).mask
    assert by_path.shape == (24, 40)
    assert np.array_equal(predictor.predict(Image.open(path)).mask, by_path)
    assert np.array_equal(predictor.predict(load_rgb(path)).mask, by_path)
    segkit_cli("infer", out / "config.yaml", out / "last.pth", path, "--out-dir", tmp_path / "pred", "--device",
               "cpu", "--no-progress")
    with Image.open(tmp_path / "pred" / "masks" / "s7.png") as written:
        assert written.size == (40, 24)


def test_upright_mask_of_a_rotated_photo_is_reported_with_exif(tmp_path):
    root = tmp_path / "data"
    write_folder(root, {"a": 6}, mask_mode="upright")
    (root / "test.txt").write_text("a\n")
    cfg = load_config(FOLDER, ["DATA.ROOT", str(root)])
    (problem,) = check_data(cfg, splits=("test",)).errors
    assert problem.kind == "mask_size" and problem.found == "is 24x40 pixels"
    assert problem.expected.startswith("40x24, the size of its image; the image has EXIF orientation 6 "
                                       "(turned 90° clockwise) and is read upright")
    with pytest.raises(ValueError, match="is 40x24 but mask .* is 24x40; .*EXIF orientation 6"):
        build_dataset(cfg, "test")[0]
    # The same upright mask carrying an orientation tag of its own (1) is read as it is.
    shutil.rmtree(root)
    truth = write_folder(root, {"a": 6}, mask_mode="upright-tagged")
    (root / "test.txt").write_text("a\n")
    assert check_data(cfg, splits=("test",)).ok
    item = build_dataset(cfg, "test")[0]
    assert_aligned(item["image"], item["mask"], truth["a"][1])


def test_oxford_rotated_photo_through_the_cache(tmp_path, monkeypatch):
    """Oxford's loader (draft decoding, the resize cache) turns image and trimap alike, and the
    cache key changes with the decoder's version."""
    root = generate_synthetic_pets(str(tmp_path / "pets"), num_trainval=2, num_test=2, image_size=32, seed=7)
    ds = OxfordPet(root, "test")
    name = ds.names[0]
    image, mask = scene(48, 80)
    Image.fromarray(stored(image, 6)).save(ds.image_path(name), quality=95, exif=exif(6))
    Image.fromarray(np.where(stored(mask, 6) == 255, 1, 2).astype(np.uint8)).save(ds.trimap_path(name))
    cfg = load_config(UNET, tiny_overrides(root, str(tmp_path / "run")))
    assert check_data(cfg, splits=("test",)).ok
    item = ds[0]
    assert_aligned(item["image"], item["mask"], mask)
    for draft in (False, True):
        cached = ResizeCache(16, mode="memory", draft=draft).get(ds, 0)
        small = np.array(Image.fromarray(mask).resize((16, 16), Image.NEAREST))
        assert cached["image"].shape == (16, 16, 3)
        assert (cached["mask"] == 1).sum() > 0 and cached["image"][cached["mask"] == 1, 0].mean() > 150
        assert abs(int((cached["mask"] == 1).sum()) - int((small == 255).sum())) <= 8
    key = ResizeCache(16, mode="memory").key(ds, 0)
    monkeypatch.setattr(cache_module, "DECODE_VERSION", 1)
    assert ResizeCache(16, mode="memory").key(ds, 0) != key
    # A trimap drawn on the upright picture of a rotated photo: the error says EXIF.
    Image.fromarray(np.where(mask == 255, 1, 2).astype(np.uint8)).save(ds.trimap_path(name))
    with pytest.raises(ValueError, match="is 80x48 but trimap .* is 48x80; .*EXIF orientation 6"):
        OxfordPet(root, "test")[0]
    report = check_data(cfg, splits=("test",))
    assert [p.kind for p in report.errors] == ["size"] and "EXIF orientation 6" in report.errors[0].expected
