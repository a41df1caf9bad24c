"""Models of the libraries users compare segkit with, for ``segkit benchmark --peer NAME``.

A peer's model is trained in the plain loop (``plain.PlainLoop``), the way its own users
train it, so the comparison is segkit's whole configured run against that library's model in
a hand-written loop. Each entry of ``PEERS`` builds the model from the config (input channels,
classes) with random weights; the peer library is an optional dependency (the ``bench``
extra), imported only when its entry is called.
"""
from __future__ import annotations

from typing import Callable, Dict

__all__ = ["PEERS", "smp_unet_resnet34"]


def smp_unet_resnet34(cfg):
    """segmentation_models_pytorch's Unet(resnet34), random weights: the model users pick today."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError as e:
        raise ModuleNotFoundError('benchmark --peer smp needs segmentation_models_pytorch: '
                                  'pip install -e ".[bench]"') from e
    return smp.Unet("resnet34", encoder_weights=None, in_channels=cfg.MODEL.IN_CHANNELS,
                    classes=cfg.MODEL.NUM_CLASSES)


# peer name -> factory(cfg) -> torch.nn.Module (its description is in the command's --peer help)
PEERS: Dict[str, Callable] = {"smp": smp_unet_resnet34}
