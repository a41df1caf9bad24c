"""Models: ``build_model(cfg)`` turns ``cfg.MODEL`` into a :class:`Segmentor`."""
from segkit.models import backbones, decoders  # noqa: F401  (imported to register)
from segkit.models.backbones.timm_encoder import TimmEncoder, timm_model_name
from segkit.models.freeze import freeze_stages, frozen_bn_modules
from segkit.models.segmentor import Segmentor
from segkit.models.weights import load_backbone_weights
from segkit.registry import BACKBONES, DECODERS, node_kwargs

__all__ = ["build_model", "build_backbone", "Segmentor"]

# MODEL.BACKBONE keys that build_model handles itself instead of passing to the backbone class.
BACKBONE_OPTIONS = {"WEIGHTS": "", "FREEZE_AT": 0, "FROZEN_BN": False}


def build_backbone(node, in_channels: int):
    """The encoder a MODEL.BACKBONE node names; ``tu-<model>`` builds timm's <model>."""
    spec = {k: v for k, v in node.items() if str(k).upper() not in BACKBONE_OPTIONS}
    timm_name = timm_model_name(spec.get("NAME"))
    if timm_name is not None and spec["NAME"] not in BACKBONES:
        kwargs = node_kwargs(spec)
        try:
            return TimmEncoder(model_name=timm_name, in_channels=in_channels, **kwargs)
        except TypeError as e:
            raise TypeError(f"Building backbone '{spec['NAME']}' with {sorted(kwargs)} failed: {e}") from e
    return BACKBONES.build(spec, in_channels=in_channels)


def build_model(cfg, backbone_weights: bool = True) -> Segmentor:
    """Build the encoder named by MODEL.BACKBONE, then a decoder sized from what it declares.

    MODEL.BACKBONE.WEIGHTS / FREEZE_AT / FROZEN_BN are applied to the encoder here, the same
    way for every backbone; ``backbone_weights=False`` skips reading the WEIGHTS file (for
    callers that load a whole trained model right after).
    """
    m = cfg.MODEL
    backbone = build_backbone(m.BACKBONE, m.IN_CHANNELS)
    missing = [a for a in ("out_channels", "strides") if not hasattr(backbone, a)]
    if missing:
        raise TypeError(f"Backbone '{m.BACKBONE.NAME}' ({type(backbone).__qualname__}) does not declare "
                        f"{' and '.join(missing)}; an encoder must set out_channels and strides "
                        f"(one int per returned feature map) so a decoder can be built for it.")
    opts = {k: m.BACKBONE.get(k, v) for k, v in BACKBONE_OPTIONS.items()}
    if opts["WEIGHTS"] and backbone_weights:
        load_backbone_weights(backbone, opts["WEIGHTS"])
    freeze_stages(backbone, opts["FREEZE_AT"], m.IN_CHANNELS)
    frozen_bn = frozen_bn_modules(backbone, all_bn=bool(opts["FROZEN_BN"]))
    decoder = DECODERS.build(m.DECODER, encoder_channels=list(backbone.out_channels),
                             encoder_strides=list(backbone.strides), num_classes=m.NUM_CLASSES)
    return Segmentor(backbone, decoder, arch={"backbone": m.BACKBONE.NAME, "decoder": m.DECODER.NAME},
                     frozen_bn=frozen_bn)
