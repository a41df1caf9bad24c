"""INT8 export: a quantized ONNX file that segkit test, infer and the Predictor serve, scored
against fp32 before it is written, refused when it loses too much, and one clear error for each
input that cannot be quantized or served."""
import numpy as np
import pytest

from segkit.config import load_config
from segkit.inference import Predictor

from .conftest import tiny_overrides, untrained_checkpoint

onnx = pytest.importorskip("onnx")  # the dev extra installs it; CI runs these


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, synthetic_root):
    folder = tmp_path_factory.mktemp("int8_model")
    config, ckpt, cfg = untrained_checkpoint(folder, tiny_overrides(synthetic_root, str(folder / "run")))
    return str(config), str(ckpt), cfg


@pytest.fixture(scope="module")
def int8_model(tiny_model, tmp_path_factory):
    from segkit.commands import main

    config, ckpt, _ = tiny_model
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    assert main(["export", config, ckpt, "--format", "onnx", "--quantize", "int8", "--calib-images", "6",
                 "--max-dice-drop", "1", "--output", str(out), "--json-out", str(out) + ".json"]) == 0
    return out


def test_the_int8_file_is_quantized_and_carries_its_config(int8_model, tiny_model):
    import json

    model = onnx.load(str(int8_model))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 10  # every conv's weights, per channel
    meta = {p.key: p.value for p in model.metadata_props}
    assert load_config(None, []).dump() != meta["segkit.config"] and "INPUT:" in meta["segkit.config"]
    result = json.loads(open(str(int8_model) + ".json").read())
    assert result["ok"] and result["calib_images"] == 6 and result["eval_split"] == "val"
    assert 0 <= result["mask_agreement"] <= 1 and result["dice_drop"] == pytest.approx(
        result["fp32_dice"] - result["int8_dice"])


def test_test_infer_and_predictor_serve_the_int8_file(int8_model, tiny_model, segkit_cli, tmp_path):
    config, ckpt, _ = tiny_model
    result = segkit_cli("test", config, int8_model).json()
    assert result["n"] == 8 and 0 <= result["dice_mean"] <= 1
    image = np.random.default_rng(0).integers(0, 255, (45, 67, 3), dtype=np.uint8)
    prediction = Predictor(config, str(int8_model))(image)
    assert prediction.mask.shape == (45, 67)
    slide = load_config(config, ["TEST.MODE", "slide", "TEST.CROP_SIZE", "32"])
    assert Predictor(slide, str(int8_model))(image).mask.shape == (45, 67)  # windows through the INT8 model
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "cat.png")
    segkit_cli("infer", config, int8_model, tmp_path / "cat.png", "--out-dir", tmp_path / "preds")
    assert (tmp_path / "preds" / "masks" / "cat.png").is_file()


def test_an_int8_file_with_the_wrong_config_is_refused(int8_model, tiny_model, segkit_cli):
    config, _, _ = tiny_model
    res = segkit_cli("test", config, int8_model, "INPUT.SIZE", "64", check=False)
    assert res.returncode == 2
    assert "ONNX model" in res.stderr and "INPUT.SIZE is 32 in the checkpoint but 64 in the config" in res.stderr


def test_too_large_a_drop_writes_nothing_and_exits_1(tiny_model, segkit_cli, tmp_path):
    config, ckpt, _ = tiny_model
    out = tmp_path / "refused.int8.onnx"
    res = segkit_cli("export", config, ckpt, "--format", "onnx", "--quantize", "int8", "--calib-images", "4",
                     "--max-dice-drop", "-1", "--output", out, check=False)
    assert res.returncode == 1 and "not written" in res.stdout and not out.exists()
    assert not list(tmp_path.iterdir())  # no temporary left behind either
    assert res.json()["kept_float"]  # the retry kept the first and last convolution in float


def test_inputs_that_cannot_be_quantized(tiny_model, segkit_cli, tmp_path):
    config, ckpt, _ = tiny_model
    base = ["export", config, ckpt, "--format", "onnx", "--quantize", "int8", "--output", tmp_path / "m.onnx"]
    cases = [
        (["--calib-split", "test"], "--calib-split 'test': calibrate on train or val images"),
        (["--eval-split", "test"], "--eval-split test"),
        (["--calib-images", "0"], "--calib-images must be at least 1"),
        (["DATA.VAL_FRACTION", "0.0"], "the val split is empty"),
        (["DATA.ROOT", tmp_path / "empty"], "empty"),
    ]
    (tmp_path / "empty").mkdir()
    for extra, message in cases:
        res = segkit_cli(*base, *extra, check=False)
        assert res.returncode == 2 and message in res.stderr, (extra, res.stderr)
    res = segkit_cli("export", config, ckpt, "--format", "torchscript", "--quantize", "int8", check=False)
    assert res.returncode == 2 and "use it with --format onnx" in res.stderr
    assert not (tmp_path / "m.onnx").exists()
