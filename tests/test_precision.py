"""Precision choices: SOLVER.AMP.DTYPE auto per device, explicit dtypes, and fp32 kept available."""
import pytest
import torch

from segkit.config import load_config
from segkit.engine import precision
from segkit.utils import device
from segkit.engine.precision import amp_dtype, forward_batch

from .conftest import REPO, tiny_overrides

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def cfg_with(*opts):
    return load_config(None, list(opts))


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, None)])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert amp_dtype(cfg_with(), CPU) is expected


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_on_cuda_prefers_bf16_else_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert amp_dtype(cfg_with(), CUDA) is expected


def test_explicit_choices_win_over_the_machine(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert amp_dtype(cfg_with("SOLVER.AMP.DTYPE", "bfloat16"), CPU) is torch.bfloat16
    assert amp_dtype(cfg_with("SOLVER.AMP.DTYPE", "fp16"), CUDA) is torch.float16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert amp_dtype(cfg_with("SOLVER.AMP.ENABLED", "False"), CPU) is None
    assert amp_dtype(cfg_with("SOLVER.AMP.ENABLED", "False", "SOLVER.AMP.DTYPE", "bfloat16"), CUDA) is None


def test_bad_dtype_names_the_key():
    with pytest.raises(ValueError, match="SOLVER.AMP.DTYPE is 'half8'.*auto"):
        amp_dtype(cfg_with("SOLVER.AMP.DTYPE", "half8"), CPU)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    plain = tmp_path / "plain"
    plain.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    for path, native in ((x86, True), (arm, True), (plain, False)):
        assert bool(device.cpu_flags(str(path)) & device.NATIVE_BF16_FLAGS) is native
    assert device.cpu_flags(str(tmp_path / "missing")) == set()


def test_lab_configs_get_fast_defaults_and_fp32_stays_selectable():
    for name in ("resnet34_unet_aug_cosine", "unet_aug_plateau", "quickstart"):
        cfg = load_config(str(REPO / "configs" / f"{name}.yaml"))
        assert cfg.SOLVER.AMP.ENABLED and cfg.SOLVER.AMP.DTYPE == "auto" and cfg.MODEL.CHANNELS_LAST, name
        fp32 = load_config(str(REPO / "configs" / f"{name}.yaml"),
                           ["SOLVER.AMP.ENABLED", "False", "MODEL.CHANNELS_LAST", "False"])
        assert amp_dtype(fp32, CPU) is None and not fp32.MODEL.CHANNELS_LAST


def test_forward_batch_returns_fp32_logits_under_bf16():
    model = torch.nn.Conv2d(3, 1, 3, padding=1).to(memory_format=torch.channels_last)
    batch = {"image": torch.randn(2, 3, 16, 16), "mask": torch.zeros(2, 16, 16, dtype=torch.long)}
    images, masks, logits = forward_batch(model, batch, CPU, torch.bfloat16, channels_last=True)
    assert logits.dtype == torch.float32 and logits.shape == (2, 1, 16, 16)
    assert images.is_contiguous(memory_format=torch.channels_last)


def test_fp32_training_still_runs(synthetic_root, tmp_path):
    """A full (tiny) Trainer epoch in plain fp32 NCHW: the escape hatch must keep working."""
    from segkit.engine import Trainer

    cfg = load_config(str(REPO / "configs" / "unet_aug_cosine.yaml"),
                      tiny_overrides(synthetic_root, str(tmp_path), epochs=1)
                      + ["SOLVER.AMP.ENABLED", "False", "MODEL.CHANNELS_LAST", "False", "HOOKS", "[]",
                         "DATA.CACHE", "memory"])
    trainer = Trainer(cfg)
    assert trainer.amp_dtype is None
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # NCHW, not channels_last
    metrics = trainer.train()
    assert metrics["train/loss"] > 0 and metrics["train/img_per_s"] > 0
