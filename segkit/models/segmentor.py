"""The trainable model: an encoder and a decoder behind one ``forward(image) -> logits``."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Segmentor"]


class Segmentor(nn.Module):
    """Encoder + decoder that accepts any input size and returns logits of that size.

    Each down-sampling rounds odd sizes, after which skips and up-sampled maps disagree and
    border pixels get lost. Zero-padding the bottom/right edges up to a multiple of the
    encoder's output stride keeps every stage exact; the logits are cropped back after.
    ``arch`` records the registry names the parts were built from (class names otherwise).

    A decoder with deep supervision returns a list ``[main, side1, …]`` in training mode;
    each map is cropped the same way. ``frozen_bn`` names BatchNorm layers that stay in eval
    mode (fixed running statistics) even while the model trains (see models/freeze.py).
    """

    def __init__(self, backbone: nn.Module, decoder: nn.Module, arch: Optional[Dict[str, str]] = None,
                 frozen_bn: Sequence[nn.Module] = ()):
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        # A plain list attribute, so the layers are not registered twice in the module tree.
        self._frozen_bn: List[nn.Module] = list(frozen_bn)
        self.output_stride = int(getattr(backbone, "output_stride", None) or max(backbone.strides))
        self._arch = dict(arch) if arch else {"backbone": type(backbone).__name__,
                                              "decoder": type(decoder).__name__}

    @property
    def arch(self) -> Dict[str, str]:
        return dict(self._arch)

    def train(self, mode: bool = True) -> "Segmentor":
        super().train(mode)
        for m in self._frozen_bn:
            m.eval()
        return self

    def forward(self, x: torch.Tensor):
        h, w = x.shape[-2:]
        # Padded unconditionally (by 0 when the size already fits): a trace (ONNX, TorchScript)
        # records the pad as shape arithmetic and so works at every size, where an ``if`` would
        # freeze the branch the example input took.
        x = F.pad(x, [0, -w % self.output_stride, 0, -h % self.output_stride])
        logits = self.decoder(self.backbone(x))
        if isinstance(logits, (list, tuple)):
            return [out[..., :h, :w] for out in logits]
        return logits[..., :h, :w]
