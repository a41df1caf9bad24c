"""Predictor on odd sizes and image modes, and tools/infer.py on a folder with a broken file."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segkit.inference import Predictor, to_rgb

from .conftest import REPO, tiny_overrides, untrained_checkpoint


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained tiny UNet checkpoint and its config file (shapes and modes need no training)."""
    folder = tmp_path_factory.mktemp("infer_model")
    config, ckpt, cfg = untrained_checkpoint(folder, tiny_overrides("", str(folder / "run")))
    return str(config), str(ckpt), cfg


def test_to_rgb_handles_modes():
    rgba = Image.fromarray(np.full((5, 7, 4), 200, np.uint8), mode="RGBA")
    assert to_rgb(rgba).shape == (5, 7, 3)
    grey16 = np.full((4, 6), 65535, np.uint16)
    assert to_rgb(grey16).shape == (4, 6, 3) and to_rgb(grey16).max() == 255
    assert to_rgb(Image.fromarray(grey16)).max() == 255          # PIL I;16, scaled not clipped
    palette = Image.fromarray(np.zeros((3, 3), np.uint8), mode="P")
    palette.putpalette([10, 20, 30] * 256)
    assert to_rgb(palette)[0, 0].tolist() == [10, 20, 30]
    assert to_rgb(np.full((2, 2), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    with pytest.raises(TypeError, match="expected a path"):
        to_rgb(42)


def test_predictor_returns_masks_at_each_images_own_size(tiny_model, tmp_path):
    config, ckpt, cfg = tiny_model
    predictor = Predictor(config, ckpt, precision="fp32")
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), mode="RGBA")
    grey = Image.fromarray(rng.integers(0, 256, (61, 29), dtype=np.uint8), mode="L")
    path = tmp_path / "odd.png"
    Image.fromarray(rng.integers(0, 256, (17, 90, 3), dtype=np.uint8)).save(path)
    array16 = rng.integers(0, 65536, (33, 33), dtype=np.uint16)
    results = predictor.predict_batch([rgba, grey, str(path), array16])
    for res, (h, w) in zip(results, [(37, 53), (61, 29), (17, 90), (33, 33)]):
        assert res.mask.shape == (h, w) and res.mask.dtype == np.uint8
        assert res.prob.shape == (h, w) and 0.0 <= res.prob.min() and res.prob.max() <= 1.0
        assert np.array_equal(res.mask, (res.prob > cfg.TEST.THRESHOLD).astype(np.uint8))
    # One at a time and batched agree; so does flip TTA with itself on a mirrored image's mirror.
    single = predictor(grey)
    assert np.allclose(single.prob, results[1].prob, atol=1e-5)
    flip = Predictor(cfg, ckpt, precision="fp32", tta_flip=True)
    a = flip(np.asarray(grey)).prob
    b = flip(np.asarray(grey)[:, ::-1].copy()).prob[:, ::-1]
    assert np.allclose(a, b, atol=1e-5)


def test_infer_cli_skips_a_broken_file_and_fails_at_the_end(tiny_model, tmp_path):
    config, ckpt, _ = tiny_model
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(images / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (25, 50, 4), dtype=np.uint8), mode="RGBA").save(images / "b.png")
    (images / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "infer.py"), config, ckpt, str(images),
                           "--out-dir", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "broken.jpg" in proc.stderr and "wrote 2 mask(s)" in proc.stdout
    with Image.open(out / "masks" / "a.png") as m:
        assert m.size == (30, 40)
    with Image.open(out / "overlays" / "b.png") as o:
        assert o.size == (50, 25) and o.mode == "RGB"
    assert not (out / "masks" / "broken.png").exists()


def test_infer_in_process_takes_overrides_after_the_inputs(tiny_model, tmp_path, segkit_cli):
    """KEY VALUE pairs after the inputs are overrides: TEST.THRESHOLD 1.0 leaves every mask empty."""
    config, ckpt, _ = tiny_model
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(image)
    out, json_out = tmp_path / "out", tmp_path / "infer.json"
    res = segkit_cli("infer", config, ckpt, image, "TEST.THRESHOLD", "1.0", "--out-dir", out, "--json-out", json_out,
                     "--no-progress")
    assert "wrote 1 mask(s)" in res.stdout
    with Image.open(out / "masks" / "a.png") as m:
        assert m.size == (24, 20) and not np.asarray(m).any()
    assert json.loads(json_out.read_text()) == {"out_dir": str(out), "written": 1, "failed": []}
    res = segkit_cli("infer", config, ckpt, tmp_path / "nothing*.png", "--out-dir", out, check=False)
    assert res.returncode == 2 and "nothing*.png" in res.stderr
