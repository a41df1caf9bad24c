"""The ema hook: evaluation and checkpoints use the average, resume continues the raw weights."""
import pytest
import torch

from segkit.config import load_config
from segkit.engine import Trainer, evaluate_checkpoint, load_checkpoint

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs" / "unet_aug_cosine.yaml")
EMA = "[{'NAME': 'ema', 'DECAY': 0.9}]"


def _cfg(root, out, epochs, *extra):
    out.mkdir(parents=True, exist_ok=True)
    return load_config(CONFIG, tiny_overrides(root, str(out), epochs=epochs)
                       + ["DETERMINISTIC", "True", "CUSTOM_HOOKS", EMA, *extra])


def _max_diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


class _FakeTrainer:
    """What the hook reads of a trainer: the model, this step's outputs and the update count."""

    def __init__(self):
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.eval_model, self.step_outputs, self.num_updates = None, {}, 0

    def step(self, weight, stepped=True, skipped=False):
        with torch.no_grad():
            self.model.weight.fill_(weight)
        self.num_updates += stepped and not skipped
        self.step_outputs = {"stepped": stepped, "skipped": skipped}


def test_update_is_decay_times_average_plus_the_rest_times_weights():
    from segkit.engine.hooks.ema import EMAHook

    hook, trainer = EMAHook(decay=0.9, warmup=False), _FakeTrainer()
    hook.trainer = trainer
    hook.before_train()
    average = lambda: trainer.eval_model.weight.item()  # noqa: E731
    for weight, stepped, skipped, expected in [
        (5.0, True, False, 5.0),                 # the first update copies the weights
        (1.0, True, False, 0.9 * 5.0 + 0.1 * 1.0),   # 4.6
        (7.0, True, True, 4.6),                  # a skipped (non-finite) step leaves it alone
        (7.0, False, False, 4.6),                # so does an accumulation step without an update
        (3.0, True, False, 0.9 * 4.6 + 0.1 * 3.0),   # 4.44
    ]:
        trainer.step(weight, stepped, skipped)
        hook.after_step()
        assert average() == pytest.approx(expected, rel=1e-6), (weight, stepped, skipped)
    assert trainer.model.weight.item() == 3.0  # the trained weights are not touched


def test_checkpoint_holds_the_average_and_val_scores_it(synthetic_root, tmp_path):
    trainer = Trainer(_cfg(synthetic_root, tmp_path, 2))
    trainer.train()
    ckpt = load_checkpoint(str(tmp_path / "last.pth"))
    raw = ckpt["hooks"]["EMAHook"]["train_weights"]
    # the saved model is the EMA module's state, not the trained weights
    ema_state = trainer.eval_model.state_dict()
    assert _max_diff(ckpt["model"], {k: v.cpu() for k, v in ema_state.items()}) == 0.0
    assert _max_diff(raw, {k: v.cpu() for k, v in trainer.model.state_dict().items()}) == 0.0
    assert _max_diff(ckpt["model"], raw) > 0
    # validation in training scored the average: re-scoring last.pth on val gives the logged value
    result = evaluate_checkpoint(trainer.cfg, str(tmp_path / "last.pth"), split="val")
    assert abs(result["dice_mean"] - trainer.epoch_metrics["val/dice"]) < 1e-6


def test_resume_continues_from_raw_weights_exactly(synthetic_root, tmp_path):
    Trainer(_cfg(synthetic_root, tmp_path / "ref", 3)).train()
    cut = Trainer(_cfg(synthetic_root, tmp_path / "cut", 3))
    cut.max_epochs = 2  # the same 3-epoch schedule, stopped after epoch 2
    cut.train()
    Trainer(_cfg(synthetic_root, tmp_path / "cut", 3), resume=str(tmp_path / "cut" / "last.pth")).train()
    ref, got = (load_checkpoint(str(tmp_path / d / "last.pth")) for d in ("ref", "cut"))
    assert _max_diff(ref["model"], got["model"]) == 0.0
    assert _max_diff(ref["hooks"]["EMAHook"]["train_weights"], got["hooks"]["EMAHook"]["train_weights"]) == 0.0


def test_decay_out_of_range_is_an_error(synthetic_root, tmp_path):
    with pytest.raises(ValueError, match="DECAY"):
        Trainer(load_config(CONFIG, tiny_overrides(synthetic_root, str(tmp_path))
                            + ["CUSTOM_HOOKS", "[{'NAME': 'ema', 'DECAY': 1.0}]"]))
