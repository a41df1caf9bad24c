"""Any encoder × any decoder: the matrix at an odd size, SegNet / U²-Net, timm names, deep supervision."""
import warnings

import pytest
import torch
from torch import nn

from segkit.config import load_config
from segkit.config.defaults import get_default_config
from segkit.engine import Trainer
from segkit.losses import build_loss
from segkit.models import build_model
from segkit.models.decoders.segnet import SegNetDecoder, max_unpool

from .conftest import REPO, tiny_overrides

# Cheap settings for each part: tiny widths where the part has them.
ENCODERS = {
    "unet": {"CHANNELS": [4, 8, 16, 32, 64]},
    "resnet34": {},
    "tu-resnet18": {},
    "tu-mobilenetv3_small_050": {},
}
DECODERS = {
    "unet": {"CHANNELS": None},  # None: widths follow the encoder (set per encoder below)
    "fpn": {"PYRAMID_CHANNELS": 16, "SEGMENTATION_CHANNELS": 8},
    "deeplabv3plus": {"CHANNELS": 16, "LOW_LEVEL_CHANNELS": 8},
}
SIZE = (67, 45)


def make_cfg(backbone, decoder, backbone_kw=None, decoder_kw=None, num_classes=1):
    cfg = get_default_config()
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.DECODER.NAME, cfg.MODEL.NUM_CLASSES = backbone, decoder, num_classes
    for k, v in (backbone_kw or {}).items():
        cfg.MODEL.BACKBONE[k] = v
    for k, v in (decoder_kw or {}).items():
        if v is not None:
            cfg.MODEL.DECODER[k] = v
    return cfg


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_encoder_decoder_matrix_forward_backward_at_odd_size(encoder, decoder):
    torch.manual_seed(0)
    model = build_model(make_cfg(encoder, decoder, ENCODERS[encoder], DECODERS[decoder], num_classes=2)).train()
    assert model.arch == {"backbone": encoder, "decoder": decoder}
    x = torch.randn(1, 3, *SIZE)
    logits = model(x)
    assert logits.shape == (1, 2, *SIZE)
    nn.functional.cross_entropy(logits, torch.randint(0, 2, (1, *SIZE))).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_timm_encoder_declares_channels_and_strides_from_feature_info():
    timm = pytest.importorskip("timm")
    model = build_model(make_cfg("tu-mobilenetv3_small_050", "unet"))
    ref = timm.create_model("mobilenetv3_small_050", features_only=True, pretrained=False)
    assert model.backbone.out_channels == ref.feature_info.channels()
    assert model.backbone.strides == ref.feature_info.reduction() == [2, 4, 8, 16, 32]
    # the long form names the model in a key; both build the same thing
    long = build_model(make_cfg("timm", "unet", {"MODEL_NAME": "mobilenetv3_small_050"}))
    assert n_params(long) == n_params(model)
    assert long.arch["backbone"] == "timm"


def test_unknown_timm_model_is_a_clear_key_error():
    with pytest.raises(KeyError, match="timm has no model named 'resnet1x'.*Similar|segkit list backbones"):
        build_model(make_cfg("tu-resnet1x", "unet"))


def test_reference_parameter_counts():
    """Counts of the authors' reference implementations: SegNet 29.4M, U²-Net 44.0M, U²-Net-p 1.13M."""
    assert n_params(build_model(make_cfg("vgg16_bn_segnet", "segnet"))) == 29_439_873
    assert n_params(build_model(make_cfg("u2net", "u2net"))) == 44_009_869
    assert n_params(build_model(make_cfg("u2netp", "u2netp"))) == 1_131_181


def test_segnet_decoder_needs_pool_indices():
    dec = SegNetDecoder([4, 8], [2, 4], num_classes=1, stage_convs=[1, 1])
    with pytest.raises(TypeError, match="max-pool indices.*vgg16_bn_segnet"):
        dec([torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)])


TINY_SEGNET = {"CHANNELS": [4, 8, 16, 16, 16]}


def test_segnet_unpooling_equals_torch_and_traces_at_any_size():
    x = torch.randn(2, 3, 7, 9)
    pooled, idx = nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(max_unpool(pooled, idx, (7, 9)), nn.functional.max_unpool2d(pooled, idx, 2, 2, output_size=(7, 9)))
    model = build_model(make_cfg("vgg16_bn_segnet", "segnet", TINY_SEGNET)).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace's deprecation notice
        traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), check_trace=False)
        other = torch.randn(2, 3, 67, 45)
        assert torch.allclose(traced(other), model(other), atol=1e-6)

TINY_U2NET = {"CHANNELS": [4, 4, 4, 4, 4, 4], "MID_CHANNELS": [2, 2, 2, 2, 2, 2]}
ODD = (37, 29)


def _fit_steps(model, loss_fn, steps=8):
    """Adam on one fixed batch (a centred square of foreground); returns first and last loss."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *ODD)
    mask = torch.zeros(2, *ODD, dtype=torch.long)
    mask[:, 10:28, 8:22] = 1
    mask[:, 0, :] = 255  # an ignored row
    x[:, :, 10:28, 8:22] += 2.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss, terms = loss_fn(model(x), mask)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, terms


def test_segnet_trains_a_few_steps():
    torch.manual_seed(0)
    cfg = make_cfg("vgg16_bn_segnet", "segnet", TINY_SEGNET)
    model = build_model(cfg)
    assert model.arch == {"backbone": "vgg16_bn_segnet", "decoder": "segnet"}
    losses, _ = _fit_steps(model, build_loss(cfg))
    assert losses[-1] < 0.8 * losses[0], losses
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 67, 45)).shape == (1, 1, 67, 45)


def test_u2net_deep_supervision_trains_and_evaluates_as_one_map():
    torch.manual_seed(0)
    cfg = make_cfg("u2net", "u2net", TINY_U2NET, {"MID_CHANNELS": [2, 2, 2, 2, 2]})
    model = build_model(cfg)
    x, mask = torch.randn(2, 3, *ODD), torch.randint(0, 2, (2, *ODD))
    outs = model.train()(x)
    assert isinstance(outs, list) and len(outs) == 7  # fused + six sides, each cropped to the input
    assert all(o.shape == (2, 1, *ODD) for o in outs)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 1, *ODD)
    cfg.LOSS.TERMS = [{"NAME": "bce", "WEIGHT": 1.0}]
    loss_fn = build_loss(cfg)
    losses, terms = _fit_steps(model, loss_fn)
    assert losses[-1] < 0.8 * losses[0], losses
    # the loss is the sum of one BCE per output (equal weights when none are configured)
    model.train()
    with torch.no_grad():
        outs = model(x)
        total, _ = loss_fn(outs, mask)
        single = [nn.functional.binary_cross_entropy_with_logits(o[:, 0], mask.float()) for o in outs]
    assert torch.isclose(total, sum(single), rtol=1e-5)


def test_u2net_trains_through_the_trainer(synthetic_root, tmp_path):
    """The whole loop (forward_batch, loss, train Dice, evaluation, checkpoint) with a list output."""
    opts = tiny_overrides(synthetic_root, str(tmp_path), epochs=1) + [
        "MODEL.BACKBONE.NAME", "u2netp", "MODEL.BACKBONE.CHANNELS", "[4, 4, 4, 4, 4, 4]",
        "MODEL.BACKBONE.MID_CHANNELS", "[2, 2, 2, 2, 2, 2]", "MODEL.DECODER.NAME", "u2netp",
        "LOSS.DEEP_SUPERVISION_WEIGHTS", "[1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]",
        "HOOKS", "[{'NAME': 'evaluation'}, {'NAME': 'checkpoint', 'MONITOR': 'val/dice'}]"]
    cfg = load_config(str(REPO / "configs" / "u2netp_aug_cosine.yaml"), opts)
    trainer = Trainer(cfg)
    metrics = trainer.train()
    assert 0.0 <= metrics["val/dice"] <= 1.0 and metrics["train/loss"] > 0
    ckpt = torch.load(tmp_path / "last.pth", map_location="cpu", weights_only=False)
    assert ckpt["arch"] == {"backbone": "u2netp", "decoder": "u2netp"}
