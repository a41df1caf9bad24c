"""Loss terms (registered in LOSSES) and the weighted sum a config asks for."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..registry import LOSSES, node_kwargs
from . import bce, dice, focal, lovasz, tversky  # noqa: F401  (register the built-in terms)
from .class_weights import RULES as CLASS_WEIGHT_RULES
from .class_weights import ClassStats, class_weights
from .ohem import OhemSampler
from .pixels import probabilities

__all__ = ["WeightedLoss", "build_loss", "probabilities", "ClassStats", "class_weights", "OhemSampler",
           "CLASS_WEIGHT_RULES"]

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


class WeightedLoss(nn.Module):
    """Σ weightᵢ · termᵢ; ``forward`` also returns each term's value for logging.

    Deep supervision: given a list of logits ``[main, side1, …]`` (a model's training-mode
    output), the sum is taken on every output and those are added with ``output_weights``
    (LOSS.DEEP_SUPERVISION_WEIGHTS; empty = 1.0 each, as in U²-Net). The logged value of a
    term is its weighted sum over the outputs, so the logged terms still add up to the loss.
    ``per_image`` scores the main output only: it serves evaluation, where models return one map.

    ``ohem`` (an ``OhemSampler``, LOSS.OHEM) picks the hard pixels from the main output once per
    ``forward`` and every term and output is scored on those; ``per_image`` never samples, so
    validation scores every pixel.
    """

    def __init__(self, terms: List[Tuple[str, float, nn.Module]], output_weights: Optional[Sequence[float]] = None,
                 ohem: Optional[OhemSampler] = None):
        super().__init__()
        if not terms:
            raise ValueError("LOSS.TERMS is empty: name at least one loss term, e.g. [{NAME: bce}]")
        self.names = [n for n, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])
        self.output_weights = [float(w) for w in (output_weights or [])]
        self.ohem = ohem

    @property
    def class_weights(self) -> Dict[int, List[float]]:
        """{term index: its per-class weights} for the terms that weigh classes (for the run's log)."""
        return {i: list(t.class_weight) for i, t in enumerate(self.terms)
                if getattr(t, "class_weight", None) is not None}

    def _output_weights(self, n: int) -> List[float]:
        if not self.output_weights:
            return [1.0] * n
        if len(self.output_weights) != n:
            raise ValueError(f"LOSS.DEEP_SUPERVISION_WEIGHTS has {len(self.output_weights)} weights "
                             f"{self.output_weights} but the model returned {n} outputs (main first); "
                             f"give {n} weights, or none for 1.0 each")
        return self.output_weights

    def forward(self, logits: Logits, target: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        outputs = list(logits) if isinstance(logits, (list, tuple)) else [logits]
        out_w = self._output_weights(len(outputs)) if len(outputs) > 1 else [1.0]
        if self.ohem is not None:
            target = self.ohem(outputs[0], target)
        values = [sum(ow * term(out, target) for ow, out in zip(out_w, outputs)) for term in self.terms]
        total = sum(w * v for w, v in zip(self.weights, values))
        return total, {n: float(v.detach()) for n, v in zip(self.names, values)}

    def per_image(self, logits: Logits, target: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        return sum(w * t.per_image(logits, target) for w, t in zip(self.weights, self.terms))


def _resolve_class_weight(kwargs: Dict, where: str, class_stats: Optional[ClassStats], num_classes: int) -> None:
    """Turn a CLASS_WEIGHT rule into numbers from the training split's counts, in place."""
    rule = kwargs.get("class_weight")
    if not isinstance(rule, str) or rule not in CLASS_WEIGHT_RULES:
        return  # numbers, None or a typo: the term itself accepts or explains them
    if class_stats is None:
        raise ValueError(f"{where}: CLASS_WEIGHT {rule!r} is computed from the training split's labels, so "
                         f"build_loss needs class_stats=ClassStats(...) (the trainer counts them); none were given")
    if num_classes > 1 and class_stats.num_classes != num_classes:
        raise ValueError(f"{where}: class_stats count {class_stats.num_classes} classes but MODEL.NUM_CLASSES is "
                         f"{num_classes}: count the training labels with num_classes={num_classes}")
    kwargs["class_weight"] = class_weights(rule, class_stats)


def _ohem(cfg) -> Optional[OhemSampler]:
    node = cfg.LOSS.get("OHEM") or {}  # configs older than LOSS.OHEM have none
    if not node.get("ENABLED", False):
        return None
    return OhemSampler(node.get("THRESH", 0.7), node.get("MIN_KEPT", 100000), cfg.DATA.IGNORE_INDEX)


def build_loss(cfg, class_stats: Optional[ClassStats] = None) -> WeightedLoss:
    """The WeightedLoss cfg.LOSS describes. ``class_stats``: the training split's label counts,
    needed only when a term's CLASS_WEIGHT names a rule (see ``segkit.losses.class_weights``)."""
    terms, num_classes = [], int(cfg.MODEL.NUM_CLASSES) if "MODEL" in cfg else 0
    for i, node in enumerate(cfg.LOSS.TERMS):
        kwargs = node_kwargs(node)
        weight = kwargs.pop("weight", 1.0)
        where = f"LOSS.TERMS[{i}] ({node.get('NAME')})"
        _resolve_class_weight(kwargs, where, class_stats, num_classes)
        spec = {"NAME": node.get("NAME"), **kwargs}
        spec.setdefault("ignore_index", cfg.DATA.IGNORE_INDEX)
        try:
            terms.append((str(node["NAME"]), weight, LOSSES.build(spec)))
        except (KeyError, TypeError, ValueError) as e:
            raise type(e)(f"LOSS.TERMS[{i}]: {e.args[0] if e.args else e}") from e
    return WeightedLoss(terms, output_weights=cfg.LOSS.get("DEEP_SUPERVISION_WEIGHTS", []), ohem=_ohem(cfg))
