"""Optimizers and LR schedules by name, built from timm and torch rather than rewritten.

Registry contracts (the ``registry`` module's docstrings predate these; these win):

* ``OPTIMIZERS``: ``fn(model, lr, weight_decay, no_decay_norm_bias, **kwargs) -> Optimizer``.
  Only parameters with ``requires_grad`` are optimised; with ``no_decay_norm_bias`` every 1-D
  parameter (norm weights, biases) goes into a group with ``weight_decay=0``. Adam, AdamW
  and SGD take torch's fused step on CPU and CUDA unless the node sets ``FUSED`` or ``FOREACH``.
* ``SCHEDULERS``: ``fn(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor,
  **kwargs) -> LRSchedule``, with ``unit`` "epoch" or "step" and ``steps_per_epoch`` counting
  optimizer steps. The returned schedule has already set the LR for epoch 0 / step 0.

Time runs in the trainer's units: ``after_epoch(epoch)`` receives the number of epochs done,
which is also the index of the epoch about to run, and sets that epoch's LR; ``after_step``
does the same with optimizer steps. Warm-up is a prefix: it rises linearly from
``BASE_LR * WARMUP_FACTOR`` to ``BASE_LR`` over ``WARMUP_EPOCHS``, and a decaying schedule is
fitted into what is left of ``EPOCHS``, so the run still ends at ``eta_min``.

A schedule's ``state_dict`` holds only plain data, because checkpoints are read with
``torch.load(weights_only=True)``. timm's fixed schedules are pure functions of time, so for
them the position on the time axis is the whole state; the config rebuilds the rest.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from timm.optim import Lookahead, create_optimizer_v2
from timm.scheduler import CosineLRScheduler, PolyLRScheduler, StepLRScheduler
from torch.optim import lr_scheduler

from .registry import OPTIMIZERS, SCHEDULERS

__all__ = ["LRSchedule", "build_optimizer", "build_scheduler"]

UNITS = ("epoch", "step")
PLATEAU_MODES = ("min", "max")


def _check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{key} is {value!r}; choose one of {', '.join(map(repr, choices))}")


# ---------------------------------------------------------------------------- #
# Optimizers
# ---------------------------------------------------------------------------- #
# timm names of the torch optimizers that have a fused (one kernel per step) implementation.
_FUSABLE = ("adam", "adamw", "momentum", "nesterov")
_FUSED_DEVICES = ("cpu", "cuda")


def _fused_by_default(timm_name: str, model) -> bool:
    """Whether to ask torch for the fused step when the config does not say (``FUSED``).

    On CPU torch otherwise runs Adam one parameter at a time; the fused step does the same
    arithmetic in one pass over the weights and halves the optimizer's share of a training
    step (light ResNet34-UNet, 128 px, 2 cores: 60 ms -> 29 ms of ~450 ms). It needs floating-point
    parameters on a device with fused kernels.
    """
    if timm_name not in _FUSABLE or not isinstance(model, torch.nn.Module):
        return False
    params = [p for p in model.parameters() if p.requires_grad]
    return bool(params) and all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in params)


def _timm_optimizer(timm_name: str, model, lr, weight_decay, no_decay_norm_bias, **kwargs):
    # YAML has no tuples, and torch keeps ``betas`` as given in its param groups.
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if "fused" not in kwargs and "foreach" not in kwargs and _fused_by_default(timm_name, model):
        kwargs["fused"] = True
    # Given a module, timm itself drops frozen parameters and builds the no-decay group.
    return create_optimizer_v2(model, timm_name, lr=lr, weight_decay=weight_decay,
                               filter_bias_and_bn=no_decay_norm_bias, **kwargs)


def _register_timm_optimizer(name: str, doc: str) -> None:
    """Register ``name`` as timm's optimizer of the same name: the optimizers that need no
    arguments of their own share one body."""
    def build(model, lr, weight_decay, no_decay_norm_bias, **kwargs):
        return _timm_optimizer(name, model, lr, weight_decay, no_decay_norm_bias, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    OPTIMIZERS.register(name=name)(build)


for _name, _doc in {
    "adam": "torch Adam (fused step on CPU/CUDA); decay is L2 on the gradient. kwargs: betas, eps, amsgrad, fused.",
    "adamw": "torch AdamW (fused step on CPU/CUDA); decay is decoupled. kwargs: betas, eps, amsgrad, fused.",
    "radam": "torch RAdam: Adam without the early-step variance blow-up. kwargs: betas, eps.",
    "rmsprop": "torch RMSprop with timm's defaults (alpha 0.9, momentum 0.9). kwargs: alpha, eps, momentum.",
    "lamb": "timm LAMB: per-layer trust ratio, for very large batches. kwargs: betas, eps.",
}.items():
    _register_timm_optimizer(_name, _doc)


@OPTIMIZERS.register(name="sgd")
def sgd(model, lr, weight_decay, no_decay_norm_bias, momentum=0.9, nesterov=False, **kwargs):
    """torch SGD with classical (or ``nesterov``) momentum, fused step on CPU/CUDA.
    kwargs: momentum, nesterov, dampening, fused."""
    # timm's own "sgd" means Nesterov; "momentum" is the classical kind.
    return _timm_optimizer("nesterov" if nesterov else "momentum", model, lr, weight_decay,
                           no_decay_norm_bias, momentum=momentum, **kwargs)


@OPTIMIZERS.register(name="ranger")
def ranger(model, lr, weight_decay, no_decay_norm_bias, alpha=0.5, k=6, **kwargs):
    """Ranger: timm Lookahead (slow weights pulled ``alpha`` every ``k`` steps) around RAdam."""
    # Built here rather than as timm's "lookahead_radam" so alpha and k can be configured.
    return Lookahead(_timm_optimizer("radam", model, lr, weight_decay, no_decay_norm_bias, **kwargs),
                     alpha=alpha, k=k)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer ``cfg.SOLVER.OPTIMIZER`` names; its node may override ``WEIGHT_DECAY``."""
    node = dict(cfg.SOLVER.OPTIMIZER)
    weight_decay = cfg.SOLVER.WEIGHT_DECAY
    for key in [k for k in node if str(k).upper() == "WEIGHT_DECAY"]:
        weight_decay = node.pop(key)
    return OPTIMIZERS.build(node, model=model, lr=cfg.SOLVER.BASE_LR, weight_decay=weight_decay,
                            no_decay_norm_bias=cfg.SOLVER.NO_DECAY_NORM_BIAS)


# ---------------------------------------------------------------------------- #
# Schedules
# ---------------------------------------------------------------------------- #
class LRSchedule:
    """What the trainer drives: one object whatever the unit, so the trainer calls both hook
    points unconditionally and the schedule ignores the one that is not its unit.

    ``monitor`` names the epoch metric a schedule needs (plateau), so the trainer can check for
    it up front; None when the schedule needs none.
    """

    monitor: Optional[str] = None

    def __init__(self, optimizer: torch.optim.Optimizer, unit: str):
        _check_choice("SOLVER.SCHEDULE_UNIT", unit, UNITS)
        self.optimizer, self.unit, self.t = optimizer, unit, 0

    def after_step(self, num_updates: int) -> None:
        if self.unit == "step":
            self.t = num_updates
            self._move_to(num_updates)

    def after_epoch(self, epoch: int, metrics: Dict) -> None:
        if self.unit == "epoch":
            self.t = epoch
            self._move_to(epoch)

    def _move_to(self, t) -> None:
        """Set the optimizer's LR for position ``t`` on the schedule's time axis."""
        raise NotImplementedError

    def state_dict(self) -> Dict:
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        return {"unit": self.unit, "t": self.t, "lrs": lrs}

    def load_state_dict(self, state: Dict) -> None:
        if state["unit"] != self.unit:
            raise ValueError(f"this checkpoint's LR schedule counts in {state['unit']}s but the config's "
                             f"counts in {self.unit}s; set SOLVER.SCHEDULE_UNIT to {state['unit']!r} to resume it")
        self.t = state["t"]
        # A fresh optimizer starts at the warm-up LR; the saved LR is where the run really was.
        for group, lr in zip(self.optimizer.param_groups, state["lrs"]):
            group["lr"] = lr


class _TimmSchedule(LRSchedule):
    """A fixed timm schedule, driven by ``step`` or ``step_update`` depending on the unit."""

    def __init__(self, scheduler, unit: str):
        super().__init__(scheduler.optimizer, unit)
        self.scheduler = scheduler

    def _move_to(self, t) -> None:
        if self.unit == "epoch":
            self.scheduler.step(t)
        else:
            self.scheduler.step_update(t)


class _PlateauSchedule(LRSchedule):
    """torch's ReduceLROnPlateau behind a linear warm-up.

    timm's PlateauLRScheduler is deprecated, warns on every build, has no per-step warm-up and
    does not checkpoint its patience counters; torch's scheduler checkpoints all of them.
    """

    def __init__(self, optimizer, unit, warmup_t, warmup_epochs, warmup_factor, monitor, **kwargs):
        super().__init__(optimizer, unit)
        self.monitor, self.warmup_t, self.warmup_epochs = monitor, warmup_t, warmup_epochs
        self.warmup_factor = warmup_factor
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.reduce = lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        self._move_to(0)

    def _move_to(self, t) -> None:
        if t <= self.warmup_t and self.warmup_t > 0:  # after warm-up the LR is ReduceLROnPlateau's
            f = self.warmup_factor + (1 - self.warmup_factor) * t / self.warmup_t
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * f

    def after_epoch(self, epoch: int, metrics: Dict) -> None:
        if self.monitor not in metrics:
            raise KeyError(f"the plateau schedule monitors {self.monitor!r}, but this epoch's metrics hold only "
                           f"{sorted(metrics)}; set SOLVER.SCHEDULER.MONITOR to one of them")
        super().after_epoch(epoch, metrics)
        # An epoch run partly at warm-up LRs says nothing about whether the schedule stalled.
        if epoch - 1 >= self.warmup_epochs:
            self.reduce.step(metrics[self.monitor])

    def state_dict(self) -> Dict:
        return {**super().state_dict(), "reduce": self.reduce.state_dict()}

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        self.reduce.load_state_dict(state["reduce"])


class _OneCycleSchedule(LRSchedule):
    """torch's OneCycleLR, which only exists per step."""

    def __init__(self, optimizer, total_steps: int, **kwargs):
        super().__init__(optimizer, "step")
        self.scheduler = lr_scheduler.OneCycleLR(optimizer, total_steps=total_steps, **kwargs)

    def _move_to(self, t) -> None:
        # OneCycleLR raises past its last step; should the trainer take more steps than it
        # planned, the final LR holds instead of the run failing.
        while self.scheduler.last_epoch < min(t, self.scheduler.total_steps - 1):
            self.scheduler.step()

    def state_dict(self) -> Dict:
        return {**super().state_dict(), "onecycle": self.scheduler.state_dict()}

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        self.scheduler.load_state_dict(state["onecycle"])
        # torch restores the counters but not the optimizer's cycled momentum; one step back
        # and forward again re-applies the current step's LR and momentum.
        self.scheduler.last_epoch -= 1
        self.scheduler.step()


def _time_axis(epochs, steps_per_epoch, unit, warmup_epochs):
    """(run length, warm-up length) in the schedule's unit."""
    _check_choice("SOLVER.SCHEDULE_UNIT", unit, UNITS)
    if warmup_epochs < 0:
        raise ValueError(f"SOLVER.WARMUP_EPOCHS is {warmup_epochs}; it must be >= 0 (0 disables warm-up)")
    if unit == "epoch":
        return epochs, warmup_epochs
    if steps_per_epoch < 1:
        raise ValueError(f"a per-step schedule needs steps_per_epoch >= 1, got {steps_per_epoch}")
    return epochs * steps_per_epoch, round(warmup_epochs * steps_per_epoch)


def _decay_length(epochs, warmup_epochs, length, warmup_t):
    if length - warmup_t <= 0:
        raise ValueError(f"SOLVER.WARMUP_EPOCHS ({warmup_epochs}) leaves no room for the schedule in "
                         f"SOLVER.EPOCHS ({epochs}); shorten the warm-up or train longer")
    return length - warmup_t


def _timm_warmup(optimizer, unit, warmup_t, warmup_factor) -> Dict:
    base = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
    return dict(warmup_t=warmup_t, warmup_lr_init=base * warmup_factor, warmup_prefix=True,
                t_in_epochs=unit == "epoch")


@SCHEDULERS.register(name="cosine")
def cosine(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor, eta_min=0.0):
    """Cosine decay to ``eta_min`` over the run; without warm-up, torch's CosineAnnealingLR(T_max=EPOCHS)."""
    length, warmup_t = _time_axis(epochs, steps_per_epoch, unit, warmup_epochs)
    return _TimmSchedule(CosineLRScheduler(
        optimizer, t_initial=_decay_length(epochs, warmup_epochs, length, warmup_t), lr_min=eta_min,
        **_timm_warmup(optimizer, unit, warmup_t, warmup_factor)), unit)


@SCHEDULERS.register(name="cosine_restarts")
def cosine_restarts(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor, *,
                    cycle_epochs, cycle_mul=1.0, cycle_decay=1.0, eta_min=0.0):
    """SGDR: cosine cycles of ``cycle_epochs`` (× ``cycle_mul`` each), peak × ``cycle_decay`` each."""
    _, warmup_t = _time_axis(epochs, steps_per_epoch, unit, warmup_epochs)
    if cycle_epochs <= 0:
        raise ValueError(f"SOLVER.SCHEDULER.CYCLE_EPOCHS is {cycle_epochs}; a cycle must last > 0 epochs")
    cycle = cycle_epochs if unit == "epoch" else cycle_epochs * steps_per_epoch
    # timm stops restarting after cycle_limit cycles; a restart schedule restarts until the run ends.
    return _TimmSchedule(CosineLRScheduler(
        optimizer, t_initial=cycle, lr_min=eta_min, cycle_mul=cycle_mul, cycle_decay=cycle_decay,
        cycle_limit=2**31, **_timm_warmup(optimizer, unit, warmup_t, warmup_factor)), unit)


@SCHEDULERS.register(name="poly")
def poly(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor, power=0.9, eta_min=0.0):
    """Polynomial decay ``(1 - t/T) ** power`` to ``eta_min``, the usual segmentation recipe."""
    length, warmup_t = _time_axis(epochs, steps_per_epoch, unit, warmup_epochs)
    return _TimmSchedule(PolyLRScheduler(
        optimizer, t_initial=_decay_length(epochs, warmup_epochs, length, warmup_t), power=power,
        lr_min=eta_min, **_timm_warmup(optimizer, unit, warmup_t, warmup_factor)), unit)


@SCHEDULERS.register(name="none")
def constant(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor):
    """The base LR throughout, after the warm-up if there is one."""
    _, warmup_t = _time_axis(epochs, steps_per_epoch, unit, warmup_epochs)
    # A step schedule that never decays is timm's way to get its warm-up in front of a constant.
    return _TimmSchedule(StepLRScheduler(optimizer, decay_t=1, decay_rate=1.0,
                                         **_timm_warmup(optimizer, unit, warmup_t, warmup_factor)), unit)


@SCHEDULERS.register(name="plateau")
def plateau(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor, monitor="val/loss",
            mode="min", factor=0.1, patience=5, threshold=1e-4, threshold_mode="rel", cooldown=0,
            eta_min=0.0):
    """LR × ``factor`` once ``monitor`` has not improved for more than ``patience`` epochs."""
    _check_choice("SOLVER.SCHEDULER.MODE", mode, PLATEAU_MODES)
    _, warmup_t = _time_axis(epochs, steps_per_epoch, unit, warmup_epochs)
    return _PlateauSchedule(optimizer, unit, warmup_t, warmup_epochs, warmup_factor, monitor, mode=mode,
                            factor=factor, patience=patience, threshold=threshold,
                            threshold_mode=threshold_mode, cooldown=cooldown, min_lr=eta_min)


@SCHEDULERS.register(name="onecycle")
def onecycle(optimizer, epochs, steps_per_epoch, unit, warmup_epochs, warmup_factor, max_lr=None, **kwargs):
    """1cycle, per step whatever the unit: up to ``max_lr`` (BASE_LR) and down. kwargs: OneCycleLR's."""
    _check_choice("SOLVER.SCHEDULE_UNIT", unit, UNITS)
    if warmup_epochs:
        raise ValueError(f"onecycle has its own warm-up (the first pct_start of the run), so "
                         f"SOLVER.WARMUP_EPOCHS must be 0, got {warmup_epochs}; set "
                         f"SOLVER.SCHEDULER.PCT_START to lengthen it instead")
    total, _ = _time_axis(epochs, steps_per_epoch, "step", 0)
    max_lr = optimizer.param_groups[0]["lr"] if max_lr is None else max_lr
    return _OneCycleSchedule(optimizer, total_steps=total, max_lr=max_lr, **kwargs)


def build_scheduler(cfg, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> LRSchedule:
    """The LR schedule ``cfg.SOLVER.SCHEDULER`` names; ``steps_per_epoch`` counts optimizer steps."""
    s = cfg.SOLVER
    schedule = SCHEDULERS.build(s.SCHEDULER, optimizer=optimizer, epochs=s.EPOCHS,
                                steps_per_epoch=steps_per_epoch, unit=s.SCHEDULE_UNIT,
                                warmup_epochs=s.WARMUP_EPOCHS, warmup_factor=s.WARMUP_FACTOR)
    if not isinstance(schedule, LRSchedule):
        raise TypeError(f"scheduler {s.SCHEDULER.NAME!r} returned {type(schedule).__name__}; "
                        f"SCHEDULERS entries must return a segkit.solver.LRSchedule")
    return schedule

