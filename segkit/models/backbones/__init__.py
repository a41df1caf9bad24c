"""Encoders; importing this package registers each one in ``segkit.registry.BACKBONES``."""
from segkit.models.backbones import resnet, segnet, timm_encoder, u2net, unet  # noqa: F401  (imported to register)
