"""Hostile inputs, round 2: nothing a user wrote is lost and every output is safe.

1. an --out-dir in (or holding) DATA.ROOT, or holding files segkit did not write, is refused;
4. every output file is written atomically, and inputs sharing a stem get distinct names;
5. output paths are checked before the work starts;
6. a checkpoint trained with other model settings than the config is refused, key by key.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.config import load_config
from segkit.models import build_model

from .conftest import tiny_overrides, untrained_checkpoint


@pytest.fixture(scope="module")
def tiny(synthetic_root, tmp_path_factory):
    """An untrained tiny-UNet checkpoint, its config file and the overrides that describe it."""
    folder = tmp_path_factory.mktemp("hostile")
    over = tiny_overrides(synthetic_root, str(folder / "run"))
    config, ckpt, _ = untrained_checkpoint(folder, over)
    return config, ckpt, over


def _image(path, h=20, w=24, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _folder_dataset(root):
    """A `folder` dataset: <root>/images/s0.png… and their ground-truth <root>/masks/s0.png…"""
    for i in range(3):
        _image(root / "images" / f"s{i}.png", seed=i)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 24), 255 * (i % 2), np.uint8)).save(root / "masks" / f"s{i}.png")
    return {p: p.read_bytes() for p in sorted((root / "masks").iterdir())}


def test_out_dir_in_or_around_the_dataset_or_with_foreign_files_is_refused(tiny, synthetic_root, tmp_path,
                                                                          segkit_cli):
    """Item 1: a folder dataset's ground truth survives test/infer --out-dir pointed at it."""
    config, ckpt, over = tiny
    root = tmp_path / "mydata"
    truth = _folder_dataset(root)
    os.symlink(root, tmp_path / "link")
    folder_opts = [*over, "DATA.ROOT", str(root), "DATA.DATASET.NAME", "folder"]
    for out_dir, why in ((root, "is the dataset folder DATA.ROOT"), (tmp_path / "link", "is the dataset folder"),
                         (root / "masks", "lies inside the dataset folder"), (tmp_path, "holds the dataset folder")):
        res = segkit_cli("infer", config, ckpt, root / "images", *folder_opts, "--out-dir", out_dir, "--no-progress",
                         check=False)
        assert res.returncode == 2 and f"--out-dir '{out_dir}' {why}" in res.stderr, res.stderr
        res = segkit_cli("test", config, ckpt, *folder_opts, "--out-dir", out_dir, check=False)
        assert res.returncode == 2 and f"--out-dir '{out_dir}' {why}" in res.stderr, res.stderr
    # The oxford-layout dataset root of `test` is protected the same way.
    res = segkit_cli("test", config, ckpt, *over, "--out-dir", synthetic_root, check=False)
    assert res.returncode == 2 and "is the dataset folder DATA.ROOT" in res.stderr
    # A copy of the dataset that the config does not name: its masks were not written by segkit.
    copy = tmp_path / "copy"
    copy_truth = _folder_dataset(copy)
    res = segkit_cli("infer", config, ckpt, copy / "images", *over, "--out-dir", copy, "--no-progress", check=False)
    assert res.returncode == 2 and "already holds files segkit did not write there (masks/s0.png" in res.stderr
    # The library refuses on its own too.
    from segkit.visualize import PredictionWriter

    with pytest.raises(ValueError, match="segkit did not write"):
        PredictionWriter(str(copy))
    with pytest.raises(ValueError, match="is the dataset folder"):
        PredictionWriter(str(tmp_path / "link"), data_root=str(root))
    assert {p: p.read_bytes() for p in sorted((root / "masks").iterdir())} == truth
    assert {p: p.read_bytes() for p in sorted((copy / "masks").iterdir())} == copy_truth
    assert not (root / "overlays").exists() and not (copy / "overlays").exists()
    # segkit's own earlier predictions are replaced on a rerun; a file dropped in later is not.
    preds = tmp_path / "preds"
    for _ in range(2):
        assert "wrote 3 mask(s)" in segkit_cli("infer", config, ckpt, root / "images", *over, "--out-dir", preds,
                                               "--no-progress").stdout
    (preds / "overlays" / "mine.png").write_bytes(b"my own file")
    res = segkit_cli("infer", config, ckpt, root / "images", *over, "--out-dir", preds, check=False)
    assert res.returncode == 2 and "overlays/mine.png" in res.stderr
    assert (preds / "overlays" / "mine.png").read_bytes() == b"my own file"


def test_outputs_are_atomic_and_same_stem_inputs_get_distinct_names(tiny, synthetic_root, tmp_path, segkit_cli,
                                                                     monkeypatch):
    """Item 4: every file under --out-dir arrives by rename; day1/a.jpg, day1/a.png and day2/a.jpg are
    three outputs."""
    config, ckpt, over = tiny
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    for path, seed in ((day1 / "a.jpg", 1), (day1 / "a.png", 2), (day2 / "a.jpg", 3), (day2 / "b.png", 4)):
        _image(path, seed=seed)
    renamed = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        renamed.append(os.path.abspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    out = tmp_path / "out"
    res = segkit_cli("infer", config, ckpt, day1, day2, *over, "--out-dir", out, "--json-out", tmp_path / "r.json",
                     "--no-progress")
    assert "wrote 4 mask(s)" in res.stdout
    names = sorted(p.name for p in (out / "masks").iterdir())
    # b is alone: its stem; a.png is the only a.png: stem and extension; the two a.jpg: their folders too
    assert names == ["a.png.png", "b.png", "day1__a.jpg.png", "day2__a.jpg.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == names
    assert sorted(p.name for p in (out / "colour").iterdir()) == names
    with Image.open(out / "masks" / "a.png.png") as m:
        assert m.size == (24, 20)
    # `test --out-dir`: masks, colour masks, overlays, per_image.csv, best_worst.png and the per-class
    # report (per_class.csv, confusion_matrix.csv/.png), all written by rename.
    test_out = tmp_path / "test_out"
    segkit_cli("test", config, ckpt, *over, "--out-dir", test_out)
    written = [os.path.abspath(os.path.join(d, f)) for d, _, files in os.walk(test_out) for f in files
               if f != ".segkit-outputs"]
    assert len(written) == 8 + 8 + 8 + 2 + 3
    assert (test_out / "per_image.csv").is_file() and (test_out / "best_worst.png").is_file()
    assert (test_out / "confusion_matrix.png").is_file() and (test_out / "per_class.csv").is_file()
    assert set(written) <= set(renamed)
    assert all(os.path.abspath(os.path.join(out, sub, n)) in renamed for sub in ("masks", "overlays") for n in names)
    # Ctrl-C in the middle of a PNG: the earlier mask stays whole, no partial or temporary file is left.
    before = (out / "masks" / "b.png").read_bytes()
    import segkit.visualize as visualize

    class Interrupted:
        def save(self, f, format=None):
            f.write(b"\x89PNG half a file")
            raise KeyboardInterrupt

    monkeypatch.setattr(visualize, "mask_image", lambda pred, num_classes=1: Interrupted())
    res = segkit_cli("infer", config, ckpt, day2 / "b.png", *over, "--out-dir", out, "--no-progress", check=False)
    assert res.returncode == 130
    assert (out / "masks" / "b.png").read_bytes() == before
    assert not [f for f in os.listdir(out / "masks") if f.endswith(".tmp")]


def test_output_paths_are_checked_before_the_work(tiny, tmp_path, segkit_cli, monkeypatch):
    """Item 5: --json-out / --out-dir / export --output that cannot be written fail before any work."""
    config, ckpt, over = tiny
    import segkit.engine
    import segkit.export

    def no_work(*args, **kwargs):
        raise AssertionError("the work started although an output path cannot be written")

    monkeypatch.setattr(segkit.engine, "evaluate_checkpoint", no_work)
    monkeypatch.setattr(segkit.export, "export_and_check", no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    folder = tmp_path / "folder"
    folder.mkdir()
    export = ("export", config, ckpt, *over, "--format", "torchscript")
    cases = [
        (("test", config, ckpt, *over, "--json-out", folder), f"--json-out '{folder}' is a folder"),
        (("test", config, ckpt, *over, "--json-out", a_file / "r.json"), f"'{a_file}' is a file, not a folder"),
        (("test", config, ckpt, *over, "--json-out", ckpt), "is one of this command's inputs"),
        (("test", config, ckpt, *over, "--out-dir", a_file), f"--out-dir '{a_file}' is a file, not a folder"),
        (("test", config, ckpt, *over, "--out-dir", a_file / "preds"), f"'{a_file}' is a file, not a folder"),
        ((*export, "--output", a_file / "m.pt"),
         f"--output '{a_file / 'm.pt'}' cannot be written: '{a_file}' is a file"),
        ((*export, "--output", folder), f"--output '{folder}' is a folder"),
        ((*export, "--output", ckpt), "is one of this command's inputs"),
        ((*export, "--json-out", folder), "is a folder"),
    ]
    for argv, expected in cases:
        res = segkit_cli(*argv, check=False)
        assert res.returncode == 2, (argv, res.stderr)
        assert res.stderr.startswith("segkit: error: ") and expected in res.stderr, (argv, res.stderr)
    image = _image(tmp_path / "in" / "x.png")
    for extra, expected in ((("--out-dir", a_file), "is a file, not a folder"),
                            (("--out-dir", tmp_path / "ok", "--json-out", a_file / "r.json"), "is a file")):
        res = segkit_cli("infer", config, ckpt, image, *over, *extra, "--no-progress", check=False)
        assert res.returncode == 2 and expected in res.stderr, res.stderr
        assert not (tmp_path / "ok").exists()  # nothing was predicted or written
    assert a_file.read_text() == "not a folder" and ckpt.stat().st_size > 0


def test_a_checkpoint_with_other_model_settings_is_refused_key_by_key(tiny, tmp_path, segkit_cli):
    """Item 6: INPUT.SIZE, INPUT.MEAN or MODEL.* other than the checkpoint's are refused by test and infer;
    DATA.*, TEST.*, SOLVER.* and OUTPUT_DIR may differ."""
    config, ckpt, over = tiny
    res = segkit_cli("test", config, ckpt, *over, "INPUT.SIZE", "48", "INPUT.MEAN", "[0.5, 0.5, 0.5]", check=False)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    assert "INPUT.SIZE is 32 in the checkpoint but 48 in the config" in res.stderr
    assert "INPUT.MEAN is [0.485, 0.456, 0.406] in the checkpoint but [0.5, 0.5, 0.5] in the config" in res.stderr
    assert "INPUT.MEAN '[0.485, 0.456, 0.406]'" in res.stderr and "INPUT.SIZE 32" in res.stderr  # the overrides
    image = _image(tmp_path / "x.png")
    res = segkit_cli("infer", config, ckpt, image, *over, "MODEL.NUM_CLASSES", "3", "--out-dir", tmp_path / "o",
                     "--no-progress", check=False)
    assert res.returncode == 2 and "MODEL.NUM_CLASSES is 1 in the checkpoint but 3 in the config" in res.stderr
    assert not (tmp_path / "o").exists()
    from segkit.engine.checkpoint import CheckpointError
    from segkit.inference import Predictor

    cfg = load_config(None, [*over, "MODEL.DECODER.NAME", "fpn"])
    with pytest.raises(CheckpointError, match="MODEL.DECODER.NAME is 'unet' in the checkpoint but 'fpn'"):
        Predictor(cfg, str(ckpt))
    # Settings that do not change what the model computes may differ.
    result = segkit_cli("test", config, ckpt, *over, "TEST.THRESHOLD", "0.3", "SOLVER.BASE_LR", "0.1",
                        "OUTPUT_DIR", str(tmp_path / "elsewhere"), "MODEL.CHANNELS_LAST", "False",
                        "DATA.NUM_WORKERS", "0").json()
    assert result["n"] == 8
    # A checkpoint without a config (a bare state dict) is not compared.
    bare = tmp_path / "bare.pth"
    torch.save(build_model(load_config(None, over)).state_dict(), bare)
    Predictor(load_config(None, over), str(bare), precision="fp32")
