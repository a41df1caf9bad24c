"""Offline pretrained weights (MODEL.BACKBONE.WEIGHTS) and freezing (FREEZE_AT, FROZEN_BN)."""
import pytest
import torch
from torch import nn

from segkit.config.defaults import get_default_config
from segkit.models import build_model
from segkit.models.backbones.segnet import VGG16BNSegNetEncoder

tv_models = pytest.importorskip("torchvision.models")


def make_cfg(backbone, **opts):
    cfg = get_default_config()
    cfg.MODEL.BACKBONE.NAME = backbone
    for k, v in opts.items():
        cfg.MODEL.BACKBONE[k.upper()] = v
    return cfg


def _randomised(model: nn.Module) -> nn.Module:
    """Random non-default BN statistics too, so a skipped buffer would show in the outputs."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _torchvision_maps(tv, x):
    x1 = tv.relu(tv.bn1(tv.conv1(x)))
    x2 = tv.layer1(tv.maxpool(x1))
    x3 = tv.layer2(x2)
    x4 = tv.layer3(x3)
    return [x1, x2, x3, x4, tv.layer4(x4)]


def test_resnet34_loads_torchvision_state_dict_and_matches_its_feature_maps(tmp_path):
    tv = _randomised(tv_models.resnet34())
    path = tmp_path / "resnet34.pth"
    torch.save(tv.state_dict(), path)  # includes fc.*, which the encoder drops
    model = build_model(make_cfg("resnet34", weights=str(path))).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ours, theirs = model.backbone(x), _torchvision_maps(tv, x)
    assert len(ours) == 5
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


def test_timm_encoder_loads_torchvision_and_wrapped_checkpoints(tmp_path):
    """timm's resnet18 shares torchvision's key layout; a {'state_dict': {'module.…'}} wrapper is unwrapped."""
    tv = _randomised(tv_models.resnet18())
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, path)
    model = build_model(make_cfg("tu-resnet18", weights=str(path))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.backbone(x), _torchvision_maps(tv, x)):
            assert torch.allclose(a, b, atol=1e-5)


def test_timm_state_dict_with_classifier_loads_into_features_only_encoder(tmp_path):
    timm = pytest.importorskip("timm")
    full = _randomised(timm.create_model("mobilenetv3_small_050", pretrained=False))
    path = tmp_path / "mnv3.pth"
    torch.save(full.state_dict(), path)  # has conv_head.* and classifier.*
    model = build_model(make_cfg("tu-mobilenetv3_small_050", weights=str(path))).eval()
    ref = timm.create_model("mobilenetv3_small_050", features_only=True, pretrained=False)
    ref.load_state_dict({k: v for k, v in full.state_dict().items() if k in ref.state_dict()})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.backbone(x), ref.eval()(x)):
            assert torch.allclose(a, b, atol=1e-5)


def test_wrong_weights_list_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(tv_models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match=r"missing keys: .*layer1\.2\.bn1\.bias.*") as e:
        build_model(make_cfg("resnet34", weights=str(path)))
    assert "resnet18.pth" in str(e.value) and "unexpected" not in str(e.value)
    sd = tv_models.resnet18().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"unexpected keys: extra\.weight"):
        build_model(make_cfg("resnet18", weights=str(path)))
    with pytest.raises(ValueError, match=r"shape mismatches.*conv1\.weight \(64, 3, 7, 7\) vs \(64, 1, 7, 7\)"):
        cfg = make_cfg("resnet18", weights=str(path))
        cfg.MODEL.IN_CHANNELS = 1
        sd.pop("extra.weight")
        torch.save(sd, path)
        build_model(cfg)
    with pytest.raises(FileNotFoundError, match="MODEL.BACKBONE.WEIGHTS: .*nope.pth"):
        build_model(make_cfg("resnet18", weights=str(tmp_path / "nope.pth")))
    # evaluation / serving load a whole checkpoint next, so they never read the encoder file
    build_model(make_cfg("resnet18", weights=str(tmp_path / "nope.pth")), backbone_weights=False)


def test_segnet_encoder_uses_torchvision_vgg16_bn_keys():
    from torchvision.models.vgg import cfgs, make_layers

    theirs = {f"features.{k}": v.shape for k, v in make_layers(cfgs["D"], batch_norm=True).state_dict().items()}
    ours = {k: v.shape for k, v in VGG16BNSegNetEncoder().state_dict().items()}
    assert ours == theirs


# ---------------------------------------------------------------------------- freezing

def _train_step(model, x):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    out = model(x)
    out.float().pow(2).mean().backward()
    opt.step()


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_freeze_at_freezes_stem_and_first_stages_only():
    torch.manual_seed(0)
    model = build_model(make_cfg("resnet18", freeze_at=2))
    enc = model.backbone
    frozen = {n for n, p in enc.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in enc.named_parameters() if n.startswith(("conv1.", "bn1.", "layer1."))}
    before = _snapshot(enc)
    _train_step(model, torch.randn(2, 3, 64, 64))
    after = _snapshot(enc)
    for k in before:  # weights and BN statistics of the stem and layer1 stay exactly as they were
        if k.startswith(("conv1.", "bn1.", "layer1.")):
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])
    assert not torch.equal(before["layer2.0.bn1.running_mean"], after["layer2.0.bn1.running_mean"])
    assert all(p.grad is None for n, p in enc.named_parameters() if n in frozen)


def test_freeze_at_is_generic_over_timm_and_validated():
    model = build_model(make_cfg("tu-mobilenetv3_small_050", freeze_at=1))
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("model.conv_stem.", "model.bn1.", "model.blocks.0.")) for n in frozen)
    assert any(n.startswith("model.conv_stem.") for n in frozen)
    all_frozen = build_model(make_cfg("unet", channels=[4, 8, 16], freeze_at=3))
    assert not any(p.requires_grad for p in all_frozen.backbone.parameters())
    assert all(p.requires_grad for p in all_frozen.decoder.parameters())
    with pytest.raises(ValueError, match="FREEZE_AT must be an int from 0 .* to 3 .*got 4"):
        build_model(make_cfg("unet", channels=[4, 8, 16], freeze_at=4))


def test_frozen_bn_keeps_backbone_statistics_and_affine_fixed():
    torch.manual_seed(0)
    model = build_model(make_cfg("unet", channels=[4, 8, 16], frozen_bn=True))
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(p.requires_grad for m in bns for p in m.parameters())
    bn_before = [_snapshot(m) for m in bns]
    conv_before = model.backbone.stages[0][0].weight.detach().clone()
    dec_before = _snapshot(model.decoder)
    _train_step(model, torch.randn(2, 3, 32, 32))
    assert model.training and not any(m.training for m in bns)  # train() keeps them in eval mode
    for m, before in zip(bns, bn_before):  # running stats, step counter and affine all unchanged
        assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not torch.equal(conv_before, model.backbone.stages[0][0].weight)  # the convs still train
    dec_after = _snapshot(model.decoder)
    moved = [k for k in dec_before if "running_mean" in k and not torch.equal(dec_before[k], dec_after[k])]
    assert moved  # the decoder's BN is untouched by the option
