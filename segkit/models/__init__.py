"""Models: ``build_model(cfg)`` turns ``cfg.MODEL`` into a :class:`Segmentor`."""
from segkit.models import backbones, decoders  # noqa: F401  (imported to register)
from segkit.models.segmentor import Segmentor
from segkit.registry import BACKBONES, DECODERS

__all__ = ["build_model", "Segmentor"]


def build_model(cfg) -> Segmentor:
    """Build the encoder named by MODEL.BACKBONE, then a decoder sized from what it declares."""
    m = cfg.MODEL
    backbone = BACKBONES.build(m.BACKBONE, in_channels=m.IN_CHANNELS)
    missing = [a for a in ("out_channels", "strides") if not hasattr(backbone, a)]
    if missing:
        raise TypeError(f"Backbone '{m.BACKBONE.NAME}' ({type(backbone).__qualname__}) does not declare "
                        f"{' and '.join(missing)}; an encoder must set out_channels and strides "
                        f"(one int per returned feature map) so a decoder can be built for it.")
    decoder = DECODERS.build(m.DECODER, encoder_channels=list(backbone.out_channels),
                             encoder_strides=list(backbone.strides), num_classes=m.NUM_CLASSES)
    return Segmentor(backbone, decoder, arch={"backbone": m.BACKBONE.NAME, "decoder": m.DECODER.NAME})
