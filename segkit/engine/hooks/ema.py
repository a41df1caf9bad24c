"""Weight EMA: evaluate and save an exponential moving average of the weights.

An average over the last few hundred steps generalises better than the last step's
weights, and on short CPU runs it also smooths the noise of small batches. The average is
timm's ``ModelEmaV3`` (foreach updates, decay warm-up). The hook hands it to the trainer
as ``eval_model``: the evaluation hook scores it, so ``best.pth`` is chosen on it, and the
checkpoint hook saves it as the checkpoint's ``model``, the weights that test, infer,
export and Predictor use. The raw training weights travel in this hook's state, so
``--resume`` continues from them, not from the average.
"""
import torch

from ...registry import HOOKS
from ..checkpoint import unwrap
from .base import HookBase


@HOOKS.register(name="ema")
class EMAHook(HookBase):
    """Exponential moving average of the model's weights and buffers, updated after every
    optimizer step: ``ema = d * ema + (1 - d) * weights``.

    Args:
        decay: the largest decay ``d``; the average spans about ``1 / (1 - decay)`` steps.
        warmup: ramp the decay up from 0 as ``1 - (1 + step) ** -warmup_power`` (timm), so
            the average follows the fast early changes instead of keeping the initial weights.
        warmup_power: how fast the ramp rises (3/4 reaches 0.99 at ~460 steps).

    Its place in the hook list does not matter (``CUSTOM_HOOKS: [{NAME: ema}]`` is enough):
    the average is handed over before training and updated at ``after_step``, before any
    hook's ``after_epoch`` reads it.
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, warmup_power: float = 0.75):
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"ema hook: DECAY must be in [0, 1), got {decay}")
        self.decay, self.warmup, self.warmup_power = float(decay), bool(warmup), float(warmup_power)
        self.ema = None

    def _build(self) -> None:
        from timm.utils.model_ema import ModelEmaV3

        self.ema = ModelEmaV3(unwrap(self.trainer.model), decay=self.decay, use_warmup=self.warmup,
                              warmup_power=self.warmup_power)
        self.trainer.eval_model = self.ema.module

    def before_train(self) -> None:
        if self.ema is None:
            self._build()

    def after_step(self) -> None:
        out = self.trainer.step_outputs
        if out.get("stepped") and not out.get("skipped"):
            self.ema.update(unwrap(self.trainer.model), step=self.trainer.num_updates)

    def state_dict(self) -> dict:
        # The checkpoint's "model" holds the average; keep the weights training continues from.
        return {"train_weights": {k: v.detach().clone() for k, v in unwrap(self.trainer.model).state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        """On resume the trainer has loaded the checkpoint's model (the average): start the
        average from it and put the raw weights back into the model being trained."""
        weights = state.get("train_weights")
        if weights is None:
            return
        self._build()
        with torch.no_grad():
            unwrap(self.trainer.model).load_state_dict(weights)
