"""The UNet decoder's configurable widths and up-sampling: the light ResNet34-UNet."""
import pytest
import torch

from segkit.config import load_config
from segkit.models import build_model
from segkit.models.decoders.unet import UNetDecoder

from .conftest import REPO

# The light config (transposed up-sampling): counted once, a change to it must be deliberate.
LIGHT_R34_UNET_PARAMS = 24_349_441
# With interpolated up-sampling the light decoder is smp's Unet("resnet34", classes=1)
# (24,436,369 parameters) except for a 1×1 instead of 3×3 head conv on its 16 channels
# (16·9 + 1 - (16 + 1) = 128 fewer).
INTERPOLATED_PARAMS = 24_436_241


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def build_light(*overrides):
    return build_model(load_config(str(REPO / "configs/resnet34_unet_light_aug_cosine.yaml"), overrides))


@pytest.fixture(scope="module")
def light():
    return build_light()


@pytest.fixture(scope="module")
def interpolated():
    return build_light("MODEL.DECODER.UPSAMPLE", "nearest")


def test_light_config_builds_smp_widths_with_learned_upsampling(light):
    assert n_params(light) == LIGHT_R34_UNET_PARAMS
    assert light.decoder.channels == [256, 128, 64, 32, 16]
    assert all(isinstance(s.up, torch.nn.ConvTranspose2d) for s in light.decoder.stages)


def test_interpolated_light_decoder_is_smp_sized(interpolated):
    assert n_params(interpolated) == INTERPOLATED_PARAMS
    assert all(isinstance(s.up, torch.nn.Upsample) for s in interpolated.decoder.stages)


def test_light_decoder_runs_at_odd_sizes(light):
    light.train()
    x = torch.randn(2, 3, 67, 45, requires_grad=True)
    out = light(x)
    assert out.shape == (2, 1, 67, 45)
    out.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "transpose"])
def test_each_upsample_mode_gives_stride_one_logits(mode):
    dec = UNetDecoder([8, 16, 32], [2, 4, 8], num_classes=3, channels=[16, 8, 4], upsample=mode)
    feats = [torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8), torch.randn(1, 32, 4, 4)]
    assert dec(feats).shape == (1, 3, 32, 32)
    # Interpolating stages take the un-reduced width into their first conv.
    first_conv_in = dec.stages[0].conv[0].in_channels
    assert first_conv_in == (16 + 16 if mode == "transpose" else 32 + 16)


def test_unknown_upsample_mode_is_named():
    with pytest.raises(ValueError, match="UPSAMPLE is 'cubic'"):
        UNetDecoder([8, 16], [1, 2], num_classes=1, upsample="cubic")


def test_matches_smp_parameter_count_when_installed(interpolated):
    smp = pytest.importorskip("segmentation_models_pytorch")
    peer = smp.Unet("resnet34", encoder_weights=None, classes=1)
    head = peer.segmentation_head[0]
    assert n_params(peer) - n_params(interpolated) == head.weight.numel() + head.bias.numel() - 17
