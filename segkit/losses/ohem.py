"""Online hard example mining over pixels (mmseg's OHEMPixelSampler with a threshold)."""
import torch

from .pixels import true_class_probability

__all__ = ["OhemSampler"]


class OhemSampler:
    """Keeps the hard labelled pixels of a batch by marking the others ignored.

    A pixel is hard when the model's probability of its true label is below
    ``max(thresh, p_k)``, p_k being the (k+1)-th smallest such probability in the batch and
    k = ``min_kept`` × batch size, so with distinct probabilities at least k pixels stay
    (``thresh`` 0: exactly the k hardest). Where the batch has no more than k labelled pixels
    every one of them stays (mmseg would drop the easiest one there, an artefact of its indexing).

    Returning a target rather than a weight map lets every loss term, Dice and Lovász
    included, and every deep-supervision output see the same selection with no change of
    their own; each term then averages over the kept pixels.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int = 100000, ignore_index: int = 255):
        if not 0.0 <= float(thresh) <= 1.0:
            raise ValueError(f"OHEM: THRESH must lie in [0, 1], got {thresh!r}")
        if int(min_kept) < 1 or int(min_kept) != min_kept:
            raise ValueError(f"OHEM: MIN_KEPT must be an integer >= 1, got {min_kept!r}")
        self.thresh, self.min_kept, self.ignore_index = float(thresh), int(min_kept), ignore_index

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``target`` with the easy labelled pixels set to the ignore index."""
        valid = target != self.ignore_index
        prob = true_class_probability(logits.detach(), target, self.ignore_index)
        labelled = prob[valid]
        k = self.min_kept * target.shape[0]
        if labelled.numel() <= k:
            return target
        threshold = labelled.kthvalue(k + 1).values.clamp_min(self.thresh)
        keep = valid & (prob < threshold)
        return torch.where(keep, target, torch.full_like(target, self.ignore_index))

    def __repr__(self) -> str:
        return f"OhemSampler(thresh={self.thresh}, min_kept={self.min_kept}, ignore_index={self.ignore_index})"
