"""Any timm model as an encoder: ``NAME: timm`` with ``MODEL_NAME``, or the short form ``NAME: tu-<model>``.

timm's ``features_only=True`` strips the classifier and returns one map per reduction level;
its ``feature_info`` gives the channels and strides that segkit's decoders are sized from, so
every timm model pairs with every decoder without any per-model code here.
"""
from typing import List, Optional, Sequence

import torch
from torch import nn

from segkit.registry import BACKBONES

__all__ = ["TimmEncoder", "TIMM_PREFIX", "timm_model_name"]

TIMM_PREFIX = "tu-"


def timm_model_name(name: str) -> Optional[str]:
    """The timm model a ``tu-<model>`` backbone name stands for, or None for other names."""
    return name[len(TIMM_PREFIX):] if isinstance(name, str) and name.startswith(TIMM_PREFIX) else None


@BACKBONES.register(name="timm")
class TimmEncoder(nn.Module):
    """A timm model with ``features_only=True``; ``tu-<model>`` names build this class too.

    ``pretrained`` stays False unless the config asks: True lets timm download its weights
    (needs internet); ``MODEL.BACKBONE.WEIGHTS`` loads a local file instead. ``out_indices``
    picks feature levels (timm's default: all of them); further keyword arguments (e.g.
    ``drop_path_rate``, or ``width_multiplier`` where a model has one) go to ``timm.create_model``.
    """

    def __init__(self, model_name: str = "", in_channels: int = 3, pretrained: bool = False,
                 out_indices: Optional[Sequence[int]] = None, **kwargs):
        super().__init__()
        import timm

        if not model_name:
            raise ValueError("Backbone 'timm' needs MODEL.BACKBONE.MODEL_NAME (e.g. resnet18), "
                             "or use the short form MODEL.BACKBONE.NAME tu-resnet18")
        if not timm.is_model(model_name):
            close = timm.list_models(f"*{model_name}*")[:5]
            hint = f" Similar timm models: {', '.join(close)}." if close else ""
            raise KeyError(f"timm has no model named '{model_name}' (backbone tu-{model_name}).{hint} "
                           f"List them with: segkit list backbones --filter '{model_name}'")
        if out_indices is not None:
            kwargs["out_indices"] = tuple(int(i) for i in out_indices)
        self.model_name = model_name
        self.model = timm.create_model(model_name, features_only=True, pretrained=bool(pretrained),
                                       in_chans=in_channels, **kwargs)
        self.out_channels: List[int] = [int(c) for c in self.model.feature_info.channels()]
        self.strides: List[int] = [int(s) for s in self.model.feature_info.reduction()]

    @property
    def output_stride(self) -> int:
        return max(self.strides)

    def load_backbone_state_dict(self, state_dict, strict: bool = True):
        """Load a state dict in timm's (or torchvision's) key layout: keys without our ``model.`` prefix."""
        return self.model.load_state_dict(state_dict, strict=strict)

    def backbone_state_dict(self):
        return self.model.state_dict()

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return list(self.model(x))
