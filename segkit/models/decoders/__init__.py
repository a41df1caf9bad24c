"""Decoders; importing this package registers each one in ``segkit.registry.DECODERS``."""
from segkit.models.decoders import unet  # noqa: F401  (imported to register)
