"""Loss terms (registered in LOSSES) and the weighted sum a config asks for."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..registry import LOSSES, node_kwargs
from . import bce, dice, focal, lovasz, tversky  # noqa: F401  (register the built-in terms)
from .pixels import probabilities

__all__ = ["WeightedLoss", "build_loss", "probabilities"]

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


class WeightedLoss(nn.Module):
    """Σ weightᵢ · termᵢ; ``forward`` also returns each term's value for logging.

    Deep supervision: given a list of logits ``[main, side1, …]`` (a model's training-mode
    output), the sum is taken on every output and those are added with ``output_weights``
    (LOSS.DEEP_SUPERVISION_WEIGHTS; empty = 1.0 each, as in U²-Net). The logged value of a
    term is its weighted sum over the outputs, so the logged terms still add up to the loss.
    ``per_image`` scores the main output only: it serves evaluation, where models return one map.
    """

    def __init__(self, terms: List[Tuple[str, float, nn.Module]], output_weights: Optional[Sequence[float]] = None):
        super().__init__()
        if not terms:
            raise ValueError("LOSS.TERMS is empty: name at least one loss term, e.g. [{NAME: bce}]")
        self.names = [n for n, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])
        self.output_weights = [float(w) for w in (output_weights or [])]

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
        values = [sum(ow * term(out, target) for ow, out in zip(out_w, outputs)) for term in self.terms]
        total = sum(w * v for w, v in zip(self.weights, values))
        return total, {n: float(v.detach()) for n, v in zip(self.names, values)}

    def per_image(self, logits: Logits, target: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
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
    return WeightedLoss(terms, output_weights=cfg.LOSS.get("DEEP_SUPERVISION_WEIGHTS", []))
