import io
import math

import pytest
import torch
from timm.optim import Lookahead
from torch import nn

from segkit.config import CN, get_default_config
from segkit.registry import OPTIMIZERS, SCHEDULERS
from segkit.solver import LRSchedule, build_optimizer, build_scheduler

UNITS = ["epoch", "step"]


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))


def make_cfg(optimizer="sgd", scheduler="cosine", base_lr=1.0, epochs=10, unit="epoch", warmup=0.0,
             factor=0.1, **solver):
    cfg = get_default_config()
    s = cfg.SOLVER
    s.OPTIMIZER = CN(optimizer if isinstance(optimizer, dict) else {"NAME": optimizer}, new_allowed=True)
    s.SCHEDULER = CN(scheduler if isinstance(scheduler, dict) else {"NAME": scheduler}, new_allowed=True)
    s.BASE_LR, s.EPOCHS, s.SCHEDULE_UNIT = base_lr, epochs, unit
    s.WARMUP_EPOCHS, s.WARMUP_FACTOR = warmup, factor
    for k, v in solver.items():
        s[k] = v
    return cfg


def build(cfg, spe):
    optimizer = build_optimizer(cfg, tiny_model())
    return optimizer, build_scheduler(cfg, optimizer, spe)


def simulate(optimizer, schedule, spe, start, end, metrics=lambda epoch: {"val/loss": 1.0}):
    """Drive the schedule as the trainer does; the LR (and beta1) each optimizer step ran with."""
    seen = []
    for epoch in range(start, end):
        for i in range(spe):
            g = optimizer.param_groups[0]
            seen.append((g["lr"], g.get("betas", (None,))[0]))
            optimizer.step()
            schedule.after_step(epoch * spe + i + 1)
        schedule.after_epoch(epoch + 1, metrics(epoch))
    return seen


def lrs(seen):
    return [lr for lr, _ in seen]


def per_epoch(seen, spe):
    return lrs(seen)[::spe]


# ---------------------------------------------------------------------------- #
# Optimizers
# ---------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", OPTIMIZERS.list())
def test_every_optimizer_builds_and_steps(name):
    model = tiny_model()
    optimizer = build_optimizer(make_cfg(optimizer=name, base_lr=1e-2, WEIGHT_DECAY=1e-4), model)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(2, 3, 8, 8)).square().mean().backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_sgd_momentum_and_nesterov_flag():
    g = build_optimizer(make_cfg(optimizer="sgd"), tiny_model()).param_groups[0]
    assert type(build_optimizer(make_cfg(optimizer="sgd"), tiny_model())) is torch.optim.SGD
    assert g["momentum"] == 0.9 and g["nesterov"] is False
    g = build_optimizer(make_cfg(optimizer={"NAME": "sgd", "NESTEROV": True, "MOMENTUM": 0.8}),
                        tiny_model()).param_groups[0]
    assert g["momentum"] == 0.8 and g["nesterov"] is True


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_fused_step_by_default_and_same_update_as_unfused(name):
    # No conv bias in front of BatchNorm: its gradient is rounding noise, which Adam scales up
    # to full steps of either sign.
    def model():
        return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))

    fused_model, plain_model = model(), model()
    plain_model.load_state_dict(fused_model.state_dict())
    fused = build_optimizer(make_cfg(optimizer=name, base_lr=1e-2), fused_model)
    plain = build_optimizer(make_cfg(optimizer={"NAME": name, "FUSED": False}, base_lr=1e-2), plain_model)
    assert fused.param_groups[0]["fused"] is True and not plain.param_groups[0]["fused"]
    x = torch.randn(2, 3, 8, 8)
    for model, optimizer in ((fused_model, fused), (plain_model, plain)):
        for _ in range(3):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_no_fused_step_where_torch_has_none_or_foreach_is_asked_for():
    assert "fused" not in build_optimizer(make_cfg(optimizer="radam"), tiny_model()).defaults
    g = build_optimizer(make_cfg(optimizer={"NAME": "adam", "FOREACH": True}), tiny_model()).param_groups[0]
    assert g["foreach"] is True and not g["fused"]


def test_ranger_is_lookahead_around_radam():
    optimizer = build_optimizer(make_cfg(optimizer={"NAME": "ranger", "K": 5}), tiny_model())
    assert isinstance(optimizer, Lookahead) and isinstance(optimizer._base_optimizer, torch.optim.RAdam)
    assert optimizer.param_groups[0]["lookahead_k"] == 5


def test_yaml_lists_become_tuples_and_node_overrides_weight_decay():
    cfg = make_cfg(optimizer={"NAME": "adamw", "BETAS": [0.8, 0.99], "WEIGHT_DECAY": 0.3}, WEIGHT_DECAY=0.1)
    g = build_optimizer(cfg, tiny_model()).param_groups[0]
    assert g["betas"] == (0.8, 0.99) and g["weight_decay"] == 0.3


def test_no_decay_for_norm_and_bias_and_frozen_params_left_out():
    model = tiny_model()
    model[3].weight.requires_grad_(False)
    cfg = make_cfg(optimizer="adamw", WEIGHT_DECAY=0.05, NO_DECAY_NORM_BIAS=True)
    groups = build_optimizer(cfg, model).param_groups
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    conv, bn, head = model[0], model[1], model[3]
    assert decay_of[id(bn.weight)] == decay_of[id(bn.bias)] == decay_of[id(conv.bias)] == 0.0
    assert decay_of[id(head.bias)] == 0.0 and decay_of[id(conv.weight)] == 0.05
    assert id(head.weight) not in decay_of

    cfg.SOLVER.NO_DECAY_NORM_BIAS = False
    groups = build_optimizer(cfg, model).param_groups
    assert {g["weight_decay"] for g in groups} == {0.05}


# ---------------------------------------------------------------------------- #
# Schedules
# ---------------------------------------------------------------------------- #
def test_cosine_per_epoch_matches_torch_cosine_annealing():
    cfg = make_cfg(scheduler="cosine", base_lr=1e-4, epochs=50)
    optimizer, schedule = build(cfg, 7)
    ours = per_epoch(simulate(optimizer, schedule, 7, 0, 50), 7)
    ref_opt = torch.optim.SGD(tiny_model().parameters(), lr=1e-4)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=50, eta_min=0)
    theirs = []
    for _ in range(50):
        theirs.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    # torch updates recursively, timm in closed form: equal up to rounding.
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)


def test_per_step_cosine_decreases_and_ends_at_eta_min():
    cfg = make_cfg(scheduler={"NAME": "cosine", "ETA_MIN": 0.01}, unit="step", epochs=5)
    optimizer, schedule = build(cfg, 20)
    seq = lrs(simulate(optimizer, schedule, 20, 0, 5))
    assert seq[0] == 1.0 and all(a >= b for a, b in zip(seq, seq[1:]))
    assert len(set(seq[:20])) == 20  # it moves within an epoch
    assert seq[-1] == pytest.approx(0.01, abs=1e-3)


def _after_warmup(name, u):
    """Each schedule's shape over the post-warm-up part of the run, u in [0, 1)."""
    return {"cosine": 0.5 * (1 + math.cos(math.pi * u)), "poly": (1 - u) ** 0.9}.get(name, 1.0)


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("name", ["cosine", "poly", "plateau", "none"])
def test_linear_warmup_then_schedule(name, unit):
    epochs, spe, warmup, factor = 10, 4, 2, 0.1
    cfg = make_cfg(scheduler=name, epochs=epochs, unit=unit, warmup=warmup, factor=factor)
    optimizer, schedule = build(cfg, spe)
    improving = lambda epoch: {"val/loss": 1.0 - 0.01 * epoch}  # noqa: E731  (plateau never decays)
    seq = lrs(simulate(optimizer, schedule, spe, 0, epochs, improving))
    if unit == "epoch":
        seq, total, w = seq[::spe], epochs, warmup
    else:
        total, w = epochs * spe, warmup * spe
    expected = [factor + (1 - factor) * t / w if t < w else _after_warmup(name, (t - w) / (total - w))
                for t in range(total)]
    assert seq == pytest.approx(expected, rel=1e-12)
    assert seq[w] == 1.0


@pytest.mark.parametrize("unit", UNITS)
def test_warm_restarts_jump_back_up(unit):
    spe = 3
    cfg = make_cfg(scheduler={"NAME": "cosine_restarts", "CYCLE_EPOCHS": 2, "CYCLE_MUL": 2, "CYCLE_DECAY": 0.8},
                   epochs=14, unit=unit)
    optimizer, schedule = build(cfg, spe)
    seq = lrs(simulate(optimizer, schedule, spe, 0, 14))
    cycle = 1 if unit == "epoch" else spe  # schedule positions per epoch
    seq = seq[::spe] if unit == "epoch" else seq
    starts = [0, 2, 6]  # cycles of 2, 4, 8 epochs
    for k, start in enumerate(starts):
        assert seq[start * cycle] == pytest.approx(0.8 ** k)
        if start:
            assert seq[start * cycle] > seq[start * cycle - 1]
    assert seq[1 * cycle] < seq[0]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("monitor, mode, values", [
    ("val/loss", "min", [1.0, 0.9, 0.9, 0.95, 0.91, 0.95]),
    ("val/dice", "max", [0.5, 0.6, 0.6, 0.55, 0.59, 0.55]),
])
def test_plateau_decays_after_patience_stalled_epochs(unit, monitor, mode, values):
    cfg = make_cfg(scheduler={"NAME": "plateau", "MONITOR": monitor, "MODE": mode, "PATIENCE": 2}, unit=unit)
    optimizer, schedule = build(cfg, 2)
    assert schedule.monitor == monitor
    metrics = lambda e: {monitor: values[e], "train/loss": 0.0}  # noqa: E731
    seq = per_epoch(simulate(optimizer, schedule, 2, 0, 6, metrics), 2)
    # torch counts patience as stalled epochs it tolerates: the third in a row decays.
    assert seq == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 0.1])


def test_plateau_mode_is_not_fooled_by_the_other_direction():
    cfg = make_cfg(scheduler={"NAME": "plateau", "MONITOR": "val/dice", "MODE": "min", "PATIENCE": 0})
    optimizer, schedule = build(cfg, 1)
    seq = lrs(simulate(optimizer, schedule, 1, 0, 3, lambda e: {"val/dice": 0.5 + 0.1 * e}))
    assert seq == pytest.approx([1.0, 1.0, 0.1])


def test_plateau_missing_metric_names_it_and_the_keys_present():
    _, schedule = build(make_cfg(scheduler="plateau"), 1)
    assert schedule.monitor == "val/loss"
    with pytest.raises(KeyError, match=r"'val/loss'.*\['train/dice', 'train/loss'\]"):
        schedule.after_epoch(1, {"train/loss": 0.3, "train/dice": 0.7})


def test_bad_unit_and_mode_name_key_value_and_choices():
    with pytest.raises(ValueError, match=r"SOLVER.SCHEDULE_UNIT is 'iter'; choose one of 'epoch', 'step'"):
        build(make_cfg(unit="iter"), 1)
    with pytest.raises(ValueError, match=r"SOLVER.SCHEDULER.MODE is 'maximum'; choose one of 'min', 'max'"):
        build(make_cfg(scheduler={"NAME": "plateau", "MODE": "maximum"}), 1)


def test_warmup_must_leave_room_for_the_schedule():
    with pytest.raises(ValueError, match="SOLVER.WARMUP_EPOCHS"):
        build(make_cfg(scheduler="cosine", epochs=3, warmup=3), 2)


@pytest.mark.parametrize("unit", UNITS)
def test_onecycle_rises_then_falls_per_step(unit):
    cfg = make_cfg(optimizer="adam", scheduler={"NAME": "onecycle", "PCT_START": 0.25}, epochs=4, unit=unit)
    optimizer, schedule = build(cfg, 10)
    seq = lrs(simulate(optimizer, schedule, 10, 0, 4))
    peak = seq.index(max(seq))
    assert peak == 9 and seq[peak] == pytest.approx(1.0) and seq[0] == pytest.approx(1.0 / 25)
    assert all(a < b for a, b in zip(seq[:peak], seq[1:peak + 1]))
    assert all(a > b for a, b in zip(seq[peak:], seq[peak + 1:]))
    assert seq[-1] == pytest.approx(1.0 / 25 / 1e4)
    schedule.after_step(41)  # a step past the planned total keeps the final LR instead of raising


def test_onecycle_refuses_a_second_warmup():
    with pytest.raises(ValueError, match="WARMUP_EPOCHS must be 0.*PCT_START"):
        build(make_cfg(scheduler="onecycle", warmup=1), 5)


def test_custom_scheduler_must_return_an_lr_schedule(monkeypatch):
    def bare(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor):
        return torch.optim.lr_scheduler.ConstantLR(optimizer)

    monkeypatch.setitem(SCHEDULERS._obj_map, "_test_bare_torch", bare)  # not left in the registry
    with pytest.raises(TypeError, match="LRSchedule"):
        build(make_cfg(scheduler="_test_bare_torch"), 1)


RESUMABLE = [
    {"NAME": "cosine"},
    {"NAME": "cosine_restarts", "CYCLE_EPOCHS": 2, "CYCLE_MUL": 2, "CYCLE_DECAY": 0.7},
    {"NAME": "poly"},
    {"NAME": "plateau", "PATIENCE": 1},
    {"NAME": "none"},
    {"NAME": "onecycle"},
]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("node", RESUMABLE, ids=lambda n: n["NAME"])
@pytest.mark.parametrize("k", [1, 4])
def test_resume_gives_the_uninterrupted_lrs(node, unit, k):
    epochs, spe = 8, 3
    losses = [1.0, 0.9, 0.95, 0.8, 0.85, 0.85, 0.9, 0.7]  # stalls before and after the save
    metrics = lambda e: {"val/loss": losses[e]}  # noqa: E731
    cfg = make_cfg(optimizer="adam", scheduler=node, epochs=epochs, unit=unit,
                   warmup=0 if node["NAME"] == "onecycle" else 1.5)

    full = simulate(*build(cfg, spe), spe, 0, epochs, metrics)

    optimizer, schedule = build(cfg, spe)
    first = simulate(optimizer, schedule, spe, 0, k, metrics)
    buffer = io.BytesIO()
    torch.save(schedule.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    optimizer, schedule = build(cfg, spe)  # fresh: only the schedule's state is restored
    schedule.load_state_dict(state)
    rest = simulate(optimizer, schedule, spe, k, epochs, metrics)
    assert first + rest == full
    assert isinstance(schedule, LRSchedule)


def test_resume_refuses_a_different_unit():
    _, schedule = build(make_cfg(unit="epoch"), 2)
    _, other = build(make_cfg(unit="step"), 2)
    with pytest.raises(ValueError, match="SCHEDULE_UNIT to 'epoch'"):
        other.load_state_dict(schedule.state_dict())


def test_plateau_ignores_metrics_of_warmup_epochs():
    cfg = make_cfg(scheduler={"NAME": "plateau", "PATIENCE": 0}, warmup=2, factor=0.1)
    optimizer, schedule = build(cfg, 1)
    seq = lrs(simulate(optimizer, schedule, 1, 0, 5, lambda e: {"val/loss": 1.0}))
    # Epochs 0-1 warm up; epoch 2 sets the first best, epoch 3 is the first stall.
    assert seq == pytest.approx([0.1, 0.55, 1.0, 1.0, 0.1])
