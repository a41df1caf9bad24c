"""The data pre-flight check: each kind of bad file is reported by name with what was expected,
all of them in one scan; odd-but-valid files pass; SKIP_BAD leaves the bad samples out."""
import collections
import itertools
import logging
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image, ImageFile
from torch.utils.data import Dataset

from segkit.config.defaults import get_default_config
from segkit.data import build_dataloader, build_dataset
from segkit.data import oxford_pet
from segkit.data import problems
from segkit.data import DataError, DataReport, Problem, check_data, preflight
from segkit.data.problems import WORKERS, check_dataset
from segkit.data.oxford_pet import OxfordPet
from segkit.data.synthetic import generate_synthetic_pets
from segkit.registry import DATASETS

from .conftest import PET_ROOT
from .conftest import needs_pet_sample as needs_pet


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A valid 8 + 4 image Oxford-layout folder, generated once; tests break copies of it."""
    return generate_synthetic_pets(str(tmp_path_factory.mktemp("pristine") / "pets"), num_trainval=8,
                                   num_test=4, image_size=40, seed=5)


@pytest.fixture
def root(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "pets")


def _cfg(root, **data):
    cfg = get_default_config()
    cfg.DATA.ROOT, cfg.DATA.NUM_WORKERS, cfg.DATA.VAL_FRACTION, cfg.INPUT.SIZE = str(root), 0, 0.25, 32
    cfg.SOLVER.BATCH_SIZE, cfg.TEST.BATCH_SIZE = 2, 2
    for k, v in data.items():
        setattr(cfg.DATA, k, v)
    return cfg


def _names(root, split="test"):
    return OxfordPet(str(root), split, val_fraction=0.25, strict=False).names


def _image(root, name):
    return os.path.join(root, "images", f"{name}.jpg")


def _trimap(root, name):
    return os.path.join(root, "annotations", "trimaps", f"{name}.png")


def _only_problem(root):
    report = check_data(_cfg(root))
    assert len(report.errors) == 1, report.format()
    return report, report.errors[0]


# ---------------------------------------------------------------- one test per case
def test_1_truncated_jpeg(root):
    name = _names(root)[0]
    data = open(_image(root, name), "rb").read()
    open(_image(root, name), "wb").write(data[: len(data) // 2])
    report, problem = _only_problem(root)
    assert problem.path == _image(root, name) and problem.name == name and problem.kind == "unreadable"
    text = report.format()
    assert f"images/{name}.jpg (image of '{name}'): cannot be decoded (image file is truncated" in text
    assert "expected a JPEG, PNG or GIF image, complete and readable" in text


def test_2_zero_byte_image(root):
    name = _names(root)[1]
    open(_image(root, name), "wb").close()
    report, problem = _only_problem(root)
    assert f"images/{name}.jpg (image of '{name}'): is empty (0 bytes); expected a JPEG, PNG or GIF image" \
        in report.format()
    assert problem.kind == "empty"


def test_3_non_image_files_in_images(root):
    # A stray .mat that no split lists (the full Oxford download has some) is only a note.
    open(os.path.join(root, "images", "Abyssinian_101.mat"), "wb").write(b"MATLAB 5.0 MAT-file" + bytes(100))
    report = check_data(_cfg(root))
    assert report.ok, report.format()
    assert "images/Abyssinian_101.mat: not an image; ignored" in "\n".join(report.notes)
    assert "Notes (1):" in report.format()
    # A .mat sitting where a listed image should be is an error naming it.
    name = _names(root)[0]
    open(_image(root, name), "wb").write(b"MATLAB 5.0 MAT-file" + bytes(100))
    report, problem = _only_problem(root)
    assert problem.path == _image(root, name)
    assert f"images/{name}.jpg (image of '{name}'): cannot be decoded (cannot identify image file" in report.format()


def test_4_missing_trimap(root):
    name = _names(root)[2]
    os.remove(_trimap(root, name))
    report, problem = _only_problem(root)
    assert (problem.path, problem.role, problem.kind) == (_trimap(root, name), "trimap", "missing")
    assert (f"annotations/trimaps/{name}.png (trimap of '{name}'): does not exist; expected a single-channel "
            f"PNG trimap there, since test.txt lists '{name}'") in report.format()


def test_5_trimap_size_differs_from_image(root):
    name = _names(root)[0]
    with Image.open(_image(root, name)) as im:
        w, h = im.size
    Image.fromarray(np.full((h + 3, w), 2, np.uint8)).save(_trimap(root, name))
    report, problem = _only_problem(root)
    assert problem.kind == "size"
    assert (f"annotations/trimaps/{name}.png (trimap of '{name}'): is {w}x{h + 3} pixels; expected {w}x{h}, "
            f"the size of its image images/{name}.jpg") in report.format()


def test_6_trimap_values_outside_1_2_3(root):
    name = _names(root)[1]
    trimap = np.array(Image.open(_trimap(root, name)))
    trimap[0, 0], trimap[0, 1] = 7, 0
    Image.fromarray(trimap).save(_trimap(root, name))
    report, problem = _only_problem(root)
    assert problem.kind == "values"
    assert (f"annotations/trimaps/{name}.png (trimap of '{name}'): values {{0, 1, 2, 3, 7}} outside {{1, 2, 3}}; "
            "expected only 1 = pet, 2 = background, 3 = boundary") in report.format()
    # An RGB trimap is named too.
    Image.fromarray(np.dstack([trimap] * 3)).save(_trimap(root, name))
    report, problem = _only_problem(root)
    assert problem.kind == "channels" and f"(trimap of '{name}'): has shape" in report.format()
    assert "expected a single-channel image" in report.format()


def test_7_split_names_an_absent_image(root):
    with open(os.path.join(root, "annotations", "test.txt"), "a") as f:
        f.write("Ghost_99 1 1 1\n")
    report = check_data(_cfg(root))
    assert report.bad_names == {"Ghost_99"} and len(report.errors) == 2  # its image and its trimap
    text = report.format()
    assert ("images/Ghost_99.jpg (image of 'Ghost_99'): does not exist; expected a JPEG, PNG or GIF image there, "
            "since test.txt lists 'Ghost_99'") in text
    assert "annotations/trimaps/Ghost_99.png (trimap of 'Ghost_99'): does not exist" in text
    with pytest.raises(FileNotFoundError, match="Ghost_99.jpg"):
        OxfordPet(str(root), "test")  # strict construction still fails, naming it


def test_8_empty_split(root):
    open(os.path.join(root, "annotations", "test.txt"), "w").write("# nothing here\n\n")
    report, problem = _only_problem(root)
    assert problem.path == os.path.join(root, "annotations", "test.txt") and problem.name == ""
    assert "annotations/test.txt: split 'test' has no samples; expected at least one sample" in report.format()
    # No val split is fine when validation is off; a missing list file is named.
    os.remove(os.path.join(root, "annotations", "trainval.txt"))
    report = check_data(_cfg(root, VAL_FRACTION=0.0), splits=("train", "val"))
    assert [p.line(report.root) for p in report.errors] == [
        "annotations/trainval.txt: does not exist; expected a text file listing this split's images (Oxford layout)"]


def test_9_deep_cmyk_and_grey_images_load_and_pass(root):
    names = _names(root)[:3]
    for name, mode in zip(names, ("I;16", "CMYK", "L")):
        rgb = np.array(Image.open(_image(root, name)).convert("RGB"))
        if mode == "I;16":
            Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(_image(root, name), format="PNG")
        else:
            Image.fromarray(rgb).convert(mode).save(_image(root, name), format="JPEG")
    with Image.open(_image(root, names[0])) as im:
        assert im.format == "PNG" and im.mode.startswith("I")
    report = check_data(_cfg(root))
    assert report.ok, report.format()
    ds = OxfordPet(str(root), "test")
    for i, name in enumerate(names):
        item = ds[ds.names.index(name)]
        assert item["image"].dtype == np.uint8 and item["image"].shape == item["mask"].shape + (3,), name


# ---------------------------------------------------------------- one scan, every problem
def _break_five(root):
    """Six problems in five samples across train, val and test; returns the culprit paths."""
    test, train, val = _names(root), _names(root, "train"), _names(root, "val")
    open(_image(root, test[0]), "wb").close()
    data = open(_image(root, test[1]), "rb").read()
    open(_image(root, test[1]), "wb").write(data[:-40])
    os.remove(_trimap(root, train[0]))
    os.remove(_image(root, val[0]))
    Image.fromarray(np.full((5, 5), 9, np.uint8)).save(_trimap(root, train[1]))  # bad values and size
    return [_image(root, test[0]), _image(root, test[1]), _trimap(root, train[0]), _image(root, val[0]),
            _trimap(root, train[1])]


def test_every_problem_is_reported_in_one_scan(root):
    culprits = _break_five(root)
    report = check_data(_cfg(root))
    assert sorted(p.path for p in report.errors) == sorted(culprits + culprits[-1:])
    assert [p.kind for p in report.errors].count("size") == 1
    text = report.format()
    for path in culprits:
        assert os.path.relpath(path, root) in text
    assert text.splitlines()[0] == f"Data check of '{root}': 6 problems in 5 of 12 samples (train 6, val 2, test 4)"
    for heading in ("Missing files (2):", "Empty files (1):", "Unreadable files (1):",
                    "Trimaps whose size differs from their image (1):", "Trimaps with values other than 1, 2, 3 (1):"):
        assert heading in text


def test_strict_construction_lists_every_missing_file(root, monkeypatch):
    names = _names(root)
    gone = [_image(root, n) for n in names] + [_trimap(root, n) for n in names[:2]]
    for path in gone:
        os.remove(path)
    with pytest.raises(FileNotFoundError) as err:
        OxfordPet(str(root), "test")
    assert all(path in str(err.value) for path in gone) and "6 file(s)" in str(err.value)
    monkeypatch.setattr(oxford_pet, "_MAX_LISTED", 4)
    with pytest.raises(FileNotFoundError, match="… and 2 more"):
        OxfordPet(str(root), "test")
    assert len(OxfordPet(str(root), "test", strict=False)) == 4


# ---------------------------------------------------------------- preflight and skipping
def test_preflight_stops_with_the_full_list(root):
    culprits = _break_five(root)
    with pytest.raises(DataError) as err:
        preflight(_cfg(root))
    message = str(err.value)
    assert all(os.path.relpath(p, root) in message for p in culprits)
    assert "set DATA.SKIP_BAD True to train without them, or DATA.CHECK False to skip this scan" in message
    assert isinstance(err.value, ValueError)
    assert preflight(_cfg(root, CHECK=False)) == set()


def test_preflight_skips_bad_samples_with_a_warning(root, caplog):
    _break_five(root)
    cfg = _cfg(root, SKIP_BAD=True)
    with caplog.at_level(logging.WARNING, logger="segkit"):
        bad = preflight(cfg)
    assert len(bad) == 5
    warning = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] == "segkit")
    assert all(name in warning for name in bad) and "DATA.SKIP_BAD" in warning
    # Strict builds succeed: the samples with missing files are left out, and nothing else is.
    kept = {s: build_dataloader(cfg, s, exclude=bad).dataset.dataset.names for s in ("train", "val", "test")}
    assert {s: len(n) for s, n in kept.items()} == {"train": 6 - 2, "val": 2 - 1, "test": 4 - 2}
    assert not set().union(*kept.values()) & bad
    for batch in build_dataloader(cfg, "test", exclude=bad):  # what is left loads
        assert batch["image"].shape[1:] == (3, 32, 32)


def test_skip_bad_cannot_skip_a_whole_split(root):
    open(os.path.join(root, "annotations", "test.txt"), "w").write("")
    with pytest.raises(DataError, match="(?s)split 'test' has no samples.*cannot help"):
        preflight(_cfg(root, SKIP_BAD=True))
    assert preflight(_cfg(root), splits=("train", "val")) == set()  # a run that never reads test


def test_unreadable_list_file_is_named(root):
    open(os.path.join(root, "annotations", "trainval.txt"), "wb").write(b"\xff\xfe\x00bad")
    report = check_data(_cfg(root))
    assert [p.line(report.root) for p in report.errors] == [
        "annotations/trainval.txt: cannot be read ('utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte); expected a text file listing this split's images (Oxford layout)"]
    with pytest.raises(ValueError, match="trainval.txt.*expected UTF-8 text"):
        OxfordPet(str(root), "train")


# ---------------------------------------------------------------- datasets without find_problems
class _Plain(Dataset):
    """A user dataset that knows neither strict, exclude nor find_problems."""

    def __init__(self, root, split, ignore_index, val_fraction, seed):
        self.split = split

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 2:
            raise OSError("disk says no")
        return {"image": np.zeros((4, 4, 3), np.uint8), "mask": np.zeros((4, 4), np.uint8), "name": str(index)}


def test_generic_datasets_are_checked_by_loading(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS._obj_map, "plain_for_check_test", _Plain)
    cfg = _cfg(tmp_path)
    cfg.DATA.DATASET = type(cfg.DATA.DATASET)({"NAME": "plain_for_check_test"})
    report = check_data(cfg, splits=("train",))
    assert [str(p) for p in report.errors] == [
        "_Plain[2] (item of 'train#2'): raises OSError: disk says no; expected the item to load"]
    assert len(build_dataset(cfg, "train", exclude=report.bad_names)) == 3
    assert len(build_dataset(cfg, "train", strict=False)) == 4


def test_report_and_problem_read_well():
    problem = Problem("/d/annotations/trimaps/x.png", "values {1, 2, 7} outside {1, 2, 3}",
                      "only 1 = pet, 2 = background, 3 = boundary", "x", "trimap", "values")
    assert str(problem).startswith("/d/annotations/trimaps/x.png (trimap of 'x'): values {1, 2, 7}")
    report = DataReport("/d", [problem], ["images/a.mat: not an image; ignored"], {"train": 3})
    assert not report.ok and report.bad_names == {"x"}
    assert report.format().splitlines() == [
        "Data check of '/d': 1 problem in 1 of 3 samples (train 3)",
        "Trimaps with values other than 1, 2, 3 (1):",
        "  annotations/trimaps/x.png (trimap of 'x'): values {1, 2, 7} outside {1, 2, 3}; "
        "expected only 1 = pet, 2 = background, 3 = boundary",
        "Notes (1):",
        "  images/a.mat: not an image; ignored",
    ]
    assert check_dataset(_Plain("", "val", 255, 0.1, 0), "val").counts == {"val": 4}


def test_truncated_images_are_never_silently_accepted():
    """PIL fills a truncated JPEG with grey when this flag is set; the check relies on it not being."""
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    package = os.path.dirname(os.path.dirname(oxford_pet.__file__))
    setters = [os.path.join(d, f) for d, _, files in os.walk(package) for f in files
               if f.endswith(".py") and "LOAD_TRUNCATED_IMAGES" in open(os.path.join(d, f), encoding="utf-8").read()]
    assert setters == [], f"segkit must not touch PIL's LOAD_TRUNCATED_IMAGES: {setters}"


# ---------------------------------------------------------------- how the scan works
def _record_scan(monkeypatch):
    """Count every decode by path, and record the size of every thread pool the scan opens."""
    decoded, lock, pools = collections.Counter(), threading.Lock(), []
    real_decode_image, real_read_trimap = oxford_pet.decode_image, OxfordPet.read_trimap

    def decode_image(path, draft_size=None):
        with lock:
            decoded[path] += 1
        return real_decode_image(path, draft_size)

    def read_trimap(self, name, image_orientation=None):
        with lock:
            decoded[self.trimap_path(name)] += 1
        return real_read_trimap(self, name, image_orientation)

    class Pool(problems.ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(oxford_pet, "decode_image", decode_image)
    monkeypatch.setattr(OxfordPet, "read_trimap", read_trimap)
    monkeypatch.setattr(problems, "ThreadPoolExecutor", Pool)
    return decoded, pools


def _listed_files(root, val_fraction):
    names = [n for split in ("train", "val", "test")
             for n in OxfordPet(str(root), split, val_fraction=val_fraction, strict=False).names]
    return {p for n in names for p in (_image(root, n), _trimap(root, n))}


def test_scan_decodes_each_file_once_in_a_pool_of_WORKERS_threads(root, monkeypatch):
    decoded, pools = _record_scan(monkeypatch)
    report = check_data(_cfg(root))
    assert report.ok, report.format()
    # Train and val share trainval.txt, yet no image is read twice, and every listed file is read;
    # a trimap is read once more for the label statistics (class frequencies, labels beyond
    # NUM_CLASSES), which are kept in the cache folder: a second check reads each file once.
    assert set(decoded) == _listed_files(root, 0.25) and len(decoded) == 2 * 12
    assert {decoded[p] for p in decoded if p.endswith(".jpg")} == {1}
    assert {decoded[p] for p in decoded if p.endswith(".png")} <= {1, 2}
    assert pools == [WORKERS] * 3  # one pool per split
    decoded.clear()
    assert check_data(_cfg(root)).ok and set(decoded.values()) == {1}


def test_workers_argument_reaches_the_scan(root, monkeypatch):
    decoded, pools = _record_scan(monkeypatch)
    check_data(_cfg(root), splits=("test",), workers=1)
    assert pools == [1] and len(decoded) == 2 * 4


def test_scan_has_WORKERS_decodes_in_flight_at_once(root, monkeypatch):
    """The first WORKERS image decodes wait at a barrier that opens only when that many are
    running together; a scan that decodes one file at a time breaks it (BrokenBarrierError,
    reported as an unreadable image)."""
    barrier, calls, real = threading.Barrier(WORKERS, timeout=10), itertools.count(), oxford_pet.decode_image

    def decode_image(path, draft_size=None):
        if next(calls) < WORKERS:
            barrier.wait()
        return real(path, draft_size)

    monkeypatch.setattr(oxford_pet, "decode_image", decode_image)
    train = OxfordPet(str(root), "train", val_fraction=0.0).names
    assert len(train) == 8 >= WORKERS
    report = check_data(_cfg(root, VAL_FRACTION=0.0), splits=("train",))
    assert report.ok, report.format()
    assert next(calls) == len(train)  # every train image went through the patched decoder


# ---------------------------------------------------------------- the real sample
@needs_pet
def test_real_sample_has_no_problems(monkeypatch):
    decoded, pools = _record_scan(monkeypatch)
    report = check_data(_cfg(PET_ROOT, VAL_FRACTION=0.1))
    assert report.ok, report.format()
    assert report.counts == {"train": 180, "val": 20, "test": 198}
    assert not any("not an image" in n for n in report.notes)
    # What keeps the check cheap on the full dataset: one decode per image, in WORKERS threads; a
    # trimap is read once more for the label statistics, which are cached after the first check.
    assert set(decoded) == _listed_files(PET_ROOT, 0.1)
    assert {n for p, n in decoded.items() if p.endswith(".jpg")} == {1} and set(decoded.values()) <= {1, 2}
    assert len(decoded) == 2 * 398 and pools == [WORKERS] * 3
    assert [report.frequencies[s]["images"][1] for s in ("train", "val", "test")] == [180, 20, 198]  # a pet each
