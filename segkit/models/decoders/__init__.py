"""Decoders; importing this package registers each one in ``segkit.registry.DECODERS``."""
from segkit.models.decoders import deeplabv3plus, fpn, segnet, u2net, unet  # noqa: F401  (imported to register)
