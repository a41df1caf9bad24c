"""Model building: parameter counts of the reference designs, shapes at any size, the encoder contract."""
import pytest
import torch
from torch import nn

from segkit.config.defaults import get_default_config
from segkit.models import Segmentor, build_model
from segkit.models.backbones.resnet import ResNetEncoder
from segkit.models.backbones.unet import UNetEncoder
from segkit.models.decoders.unet import UNetDecoder
from segkit.registry import BACKBONES

TINY_UNET = [4, 8, 16, 32, 64]
# Canonical UNet (milesial/Pytorch-UNet, bias-free DoubleConv convs) with one output channel;
# it has 31,037,698 with two, the figure usually quoted as "31.0M".
UNET_PARAMS = 31_037_633
RESNET34_ENCODER_PARAMS = 21_284_672  # torchvision resnet34 without its fc layer
RESNET34_UNET_PARAMS = 24_515_265


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def make_cfg(backbone="unet", num_classes=1, **backbone_kwargs):
    cfg = get_default_config()
    cfg.MODEL.BACKBONE.NAME = backbone
    for k, v in backbone_kwargs.items():
        cfg.MODEL.BACKBONE[k.upper()] = v
    cfg.MODEL.NUM_CLASSES = num_classes
    return cfg


@pytest.fixture(scope="module")
def unet():
    return build_model(make_cfg("unet")).eval()


@pytest.fixture(scope="module")
def resnet34_unet():
    return build_model(make_cfg("resnet34")).eval()


def test_plain_unet_matches_canonical_parameter_count(unet):
    assert isinstance(unet, Segmentor)
    assert unet.arch == {"backbone": "unet", "decoder": "unet"}
    assert n_params(unet) == UNET_PARAMS
    assert round(n_params(unet) / 1e6, 1) == 31.0
    assert unet.backbone.out_channels == [64, 128, 256, 512, 1024]
    assert unet.backbone.strides == [1, 2, 4, 8, 16] and unet.backbone.output_stride == 16
    assert unet.decoder.channels == [512, 256, 128, 64]


def test_resnet34_unet_parameter_count_and_encoder_declaration(resnet34_unet):
    enc = resnet34_unet.backbone
    assert resnet34_unet.arch == {"backbone": "resnet34", "decoder": "unet"}
    assert n_params(resnet34_unet) == RESNET34_UNET_PARAMS
    assert n_params(enc) == RESNET34_ENCODER_PARAMS
    assert enc.out_channels == [64, 64, 128, 256, 512]
    assert enc.strides == [2, 4, 8, 16, 32] and enc.output_stride == 32
    # four skip stages plus the one extra stage that climbs from stride 2 to 1
    assert resnet34_unet.decoder.channels == [256, 128, 64, 64, 64]


def test_resnet34_keys_match_torchvision():
    models = pytest.importorskip("torchvision.models")
    theirs = {k: v.shape for k, v in models.resnet34().state_dict().items() if not k.startswith("fc.")}
    ours = {k: v.shape for k, v in ResNetEncoder(layers=(3, 4, 6, 3)).state_dict().items()}
    assert ours == theirs


@pytest.mark.parametrize("size", [(256, 256), (250, 203)])
def test_full_models_output_shape(unet, resnet34_unet, size):
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert unet(x).shape == (1, 1, *size)
        assert resnet34_unet(x).shape == (1, 1, *size)


@pytest.mark.parametrize("backbone,kwargs", [("unet", {"channels": TINY_UNET}), ("resnet18", {})])
def test_multiclass_at_odd_size(backbone, kwargs):
    model = build_model(make_cfg(backbone, num_classes=3, **kwargs)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 250, 203)).shape == (2, 3, 250, 203)


def test_resnet_feature_shapes_at_224():
    enc = ResNetEncoder(layers=(2, 2, 2, 2)).eval()
    with torch.no_grad():
        feats = enc(torch.randn(1, 3, 224, 224))
    # torchvision's resnet18 maps: stem, then layer1-4
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 112, 112), (64, 56, 56), (128, 28, 28), (256, 14, 14),
                                                   (512, 7, 7)]
    assert enc.out_channels == [64, 64, 128, 256, 512] and enc.strides == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("size", [(37, 45), (23, 29)])
def test_decoder_aligns_odd_sizes_without_segmentor(size):
    """Up-sampled maps can fall short of (UNet) or overshoot (ResNet) their skip; both must join."""
    for enc in (UNetEncoder(channels=TINY_UNET), ResNetEncoder(layers=(1, 1, 1, 1))):
        dec = UNetDecoder(enc.out_channels, enc.strides, num_classes=2)
        with torch.no_grad():
            feats = enc.eval()(torch.randn(1, 3, *size))
            out = dec(feats)
        first = enc.strides[0]
        assert tuple(out.shape) == (1, 2, first * feats[0].shape[-2], first * feats[0].shape[-1])


def test_decoder_explicit_channels():
    enc = UNetEncoder(channels=TINY_UNET)
    dec = UNetDecoder(enc.out_channels, enc.strides, num_classes=2, channels=[16, 12, 8, 4])
    assert [s.up.out_channels for s in dec.stages] == [16, 12, 8, 4]
    assert dec(enc(torch.randn(1, 3, 32, 32))).shape == (1, 2, 32, 32)
    # stride-2 encoder: the last entry is the extra skip-less stage
    dec = UNetDecoder([8, 16], [2, 4], num_classes=1, channels=[6, 5])
    assert dec([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="4 positive ints"):
        UNetDecoder(enc.out_channels, enc.strides, num_classes=2, channels=[16, 8, 4])


@pytest.mark.parametrize("strides,match", [
    ([3, 6, 12], "power of two"),
    ([2, 4, 16], "double"),
    ([2, 4], "one stride per encoder map"),
])
def test_decoder_rejects_bad_strides(strides, match):
    with pytest.raises(ValueError, match=match) as e:
        UNetDecoder([8, 16, 32], strides, num_classes=1)
    assert str(strides) in str(e.value)


def test_backward_on_tiny_model_at_odd_size():
    model = build_model(make_cfg("unet", channels=[4, 8, 16])).train()
    logits = model(torch.randn(2, 3, 33, 21))
    assert logits.shape == (2, 1, 33, 21)
    nn.functional.binary_cross_entropy_with_logits(logits, torch.rand_like(logits)).backward()
    assert all(p.grad is not None for p in model.parameters())


class _TinyBackbone(nn.Module):
    """A stride-4-first encoder, as transformer backbones have, to show the decoder adapts."""

    def __init__(self, in_channels=3, width=4):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 4, stride=4)
        self.down = nn.Conv2d(width, 2 * width, 2, stride=2)
        self.out_channels, self.strides = [width, 2 * width], [4, 8]

    def forward(self, x):
        f1 = self.stem(x)
        return [f1, self.down(f1)]


class _Undeclared(nn.Module):
    def __init__(self, in_channels=3):
        super().__init__()


for _name, _cls in (("test_tiny_backbone_xyz", _TinyBackbone), ("test_undeclared_backbone_xyz", _Undeclared)):
    if _name not in BACKBONES:  # this module may be imported twice in one process
        BACKBONES.register(_cls, name=_name)


def test_user_backbone_pairs_with_unet_decoder():
    model = build_model(make_cfg("test_tiny_backbone_xyz", num_classes=2, width=6))
    assert model.arch["backbone"] == "test_tiny_backbone_xyz"
    assert model.decoder.channels == [6, 6, 6]  # one skip stage + two extra (stride 4 → 1)
    assert model(torch.randn(1, 3, 30, 19)).shape == (1, 2, 30, 19)


def test_backbone_without_declaration_is_a_clear_type_error():
    with pytest.raises(TypeError, match="_Undeclared.*out_channels and strides"):
        build_model(make_cfg("test_undeclared_backbone_xyz"))
