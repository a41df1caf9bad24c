"""Loss terms (registered in LOSSES) and the weighted sum a config asks for."""
from typing import Dict, List, Tuple

import torch
from torch import nn

from ..registry import LOSSES, node_kwargs
from . import bce, dice  # noqa: F401  (register the built-in terms)

__all__ = ["WeightedLoss", "build_loss"]


class WeightedLoss(nn.Module):
    """Σ weightᵢ · termᵢ; ``forward`` also returns each term's value for logging."""

    def __init__(self, terms: List[Tuple[str, float, nn.Module]]):
        super().__init__()
        if not terms:
            raise ValueError("LOSS.TERMS is empty: name at least one loss term, e.g. [{NAME: bce}]")
        self.names = [n for n, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        values = [term(logits, target) for term in self.terms]
        total = sum(w * v for w, v in zip(self.weights, values))
        return total, {n: float(v.detach()) for n, v in zip(self.names, values)}

    def per_image(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * t.per_image(logits, target) for w, t in zip(self.weights, self.terms))


def build_loss(cfg) -> WeightedLoss:
    terms = []
    for i, node in enumerate(cfg.LOSS.TERMS):
        kwargs = node_kwargs(node)
        weight = kwargs.pop("weight", 1.0)
        spec = {"NAME": node.get("NAME"), **kwargs}
        spec.setdefault("ignore_index", cfg.DATA.IGNORE_INDEX)
        try:
            terms.append((str(node["NAME"]), weight, LOSSES.build(spec)))
        except (KeyError, TypeError) as e:
            raise type(e)(f"LOSS.TERMS[{i}]: {e.args[0] if e.args else e}") from e
    return WeightedLoss(terms)
