"""Export: ONNX and TorchScript files of the full UNet and ResNet34-UNet match PyTorch at two
sizes, onnxruntime runs them behind the torch-model interface, the CLI proves its files,
and the Predictor gives the same mask from the .onnx as from the .pth."""
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from segkit.config import load_config
from segkit.engine.checkpoint import atomic_save, load_model_weights, make_checkpoint
from segkit.export import OnnxRuntimeModel, export_model, load_exported, max_abs_diff
from segkit.models import build_model

from .conftest import REPO

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAS_ORT, reason='onnxruntime is not installed (pip install -e ".[export]")')


def real_model(name: str) -> torch.nn.Module:
    """The full-size architecture with random weights and random BatchNorm statistics, so the
    eval-mode normalisation the file bakes in is not the identity."""
    torch.manual_seed(0)
    model = build_model(load_config(str(REPO / "configs" / f"{name}_noaug_cosine.yaml")))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


FORMATS = ["onnx", "torchscript"] if HAS_ORT else ["torchscript"]


@pytest.mark.parametrize("arch", ["unet", "resnet34_unet"])
def test_exported_files_match_pytorch_at_two_sizes(arch, tmp_path):
    model = real_model(arch)
    # 64 px as exported; then 40 x 72, which the encoder's stride (16 or 32) does not divide,
    # so the files must pad and crop as the Segmentor does.
    inputs = [torch.randn(1, 3, 64, 64), torch.randn(1, 3, 40, 72)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
    for fmt in FORMATS:
        path = str(tmp_path / f"{arch}.{fmt}")
        export_model(model, fmt, path, inputs[0], dynamic=True)
        exported = load_exported(path)
        for x, ref in zip(inputs, expected):
            with torch.no_grad():
                out = exported(x)
            assert out.shape == ref.shape == (1, 1, *x.shape[2:])
            assert float((out - ref).abs().max()) <= 1e-4, fmt


@pytest.fixture(scope="module")
def tiny_checkpoint(synthetic_root, tmp_path_factory):
    """An untrained tiny-UNet checkpoint and the overrides that describe it."""
    out = tmp_path_factory.mktemp("export")
    opts = ["DATA.ROOT", synthetic_root, "DATA.NUM_WORKERS", "0", "MODEL.BACKBONE.CHANNELS", "[4, 8, 16, 32, 64]",
            "INPUT.SIZE", "48", "TEST.BATCH_SIZE", "2"]
    cfg = load_config(str(REPO / "configs" / "unet_noaug_cosine.yaml"), opts)
    torch.manual_seed(0)
    path = str(out / "model.pth")
    atomic_save(make_checkpoint(build_model(cfg), cfg), path)
    return cfg, opts, path


@needs_ort
def test_onnxruntime_model_acts_like_a_torch_model(tiny_checkpoint, tmp_path):
    cfg, _, _ = tiny_checkpoint
    model = build_model(cfg).eval()
    path = str(tmp_path / "static.onnx")
    export_model(model, "onnx", path, torch.randn(1, 3, 64, 64), dynamic=False)
    ort_model = OnnxRuntimeModel(path, providers=["CPUExecutionProvider"])
    assert ort_model.eval() is ort_model and ort_model.to("cpu") is ort_model and ort_model.train(False) is ort_model
    images = torch.randn(1, 3, 64, 64)
    out = ort_model(images)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (1, 1, 64, 64)
    assert max_abs_diff(model, ort_model, images) <= 1e-4
    with pytest.raises(ValueError, match="--dynamic"):  # a static file names the fix
        ort_model(torch.randn(1, 3, 96, 96))
    with pytest.raises(FileNotFoundError):
        OnnxRuntimeModel(str(tmp_path / "missing.onnx"))


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now fails as if not installed
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[export\]"'):
        OnnxRuntimeModel(str(tmp_path / "any.onnx"))


@needs_ort
def test_export_cli_checks_random_and_real_inputs(tiny_checkpoint, tmp_path, capsys):
    from segkit.commands import main

    _, opts, ckpt = tiny_checkpoint
    output = str(tmp_path / "m.onnx")
    code = main(["export", str(REPO / "configs" / "unet_noaug_cosine.yaml"), ckpt, "--format", "onnx",
                 "--dynamic", "--output", output, *opts])
    printed = capsys.readouterr().out
    result = json.loads(printed.strip().splitlines()[-1])
    assert code == 0 and result["ok"] and result["output"] == output
    assert sorted(result["checks"]) == ["random", "random batch 2 at 67", "real", "real at 67"]
    assert result["max_abs_diff"] <= 1e-4 and "max |logit diff|" in printed
    # A wrong format is one clear line from the parser, not a traceback.
    with pytest.raises(SystemExit):
        main(["export", str(REPO / "configs" / "unet_noaug_cosine.yaml"), ckpt, "--format", "tflite"])


@needs_ort
def test_predictor_gives_the_same_mask_from_onnx(tiny_checkpoint, tmp_path):
    from segkit.inference import Predictor

    cfg, _, ckpt = tiny_checkpoint
    onnx_path = str(tmp_path / "model.onnx")
    model = build_model(cfg)
    load_model_weights(model, ckpt)
    export_model(model, "onnx", onnx_path, torch.randn(1, 3, 48, 48), dynamic=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (50, 70, 3), dtype=np.uint8), rng.integers(0, 255, (64, 40, 3), dtype=np.uint8)]
    ref = Predictor(cfg, ckpt, device="cpu", precision="fp32").predict_batch(images)
    got = Predictor(cfg, onnx_path).predict_batch(images)
    for r, g in zip(ref, got):
        assert g.mask.shape == r.mask.shape and np.array_equal(g.mask, r.mask)
        assert np.abs(g.prob - r.prob).max() < 1e-5


def test_export_tool_in_a_subprocess_writes_torchscript(tiny_checkpoint, tmp_path):
    """tools/export.py outside the test process; TorchScript needs no optional dependency."""
    from .conftest import run_subprocess

    _, opts, ckpt = tiny_checkpoint
    output, json_out = tmp_path / "m.torchscript", tmp_path / "export.json"
    proc = run_subprocess(REPO / "tools" / "export.py", REPO / "configs" / "unet_noaug_cosine.yaml", ckpt,
                          "--format", "torchscript", "--output", output, "--json-out", json_out, *opts)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] and output.is_file() and json.loads(json_out.read_text()) == result
    assert torch.jit.load(str(output))(torch.zeros(1, 3, 48, 48)).shape == (1, 1, 48, 48)
