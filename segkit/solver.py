"""Optimizers and LR schedules by name: thin wrappers over torch, registered for configs."""
import torch
from torch.optim import lr_scheduler

from .registry import OPTIMIZERS, SCHEDULERS

__all__ = ["build_optimizer", "build_scheduler", "is_plateau"]


@OPTIMIZERS.register(name="adam")
def adam(params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


@OPTIMIZERS.register(name="adamw")
def adamw(params, lr, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8):
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


@OPTIMIZERS.register(name="sgd")
def sgd(params, lr, weight_decay=0.0, momentum=0.9, nesterov=False):
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)


@SCHEDULERS.register(name="cosine")
def cosine(optimizer, epochs, eta_min=0.0):
    """Cosine decay from the base LR to ``eta_min`` over the whole run."""
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=eta_min)


@SCHEDULERS.register(name="plateau")
def plateau(optimizer, epochs, mode="min", factor=0.1, patience=5, min_lr=0.0):
    """Divide the LR by 1/``factor`` when the monitored value stalls for ``patience`` epochs."""
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience,
                                          min_lr=min_lr)


@SCHEDULERS.register(name="none")
def constant(optimizer, epochs):
    """Keep the base LR for the whole run."""
    return lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def is_plateau(scheduler) -> bool:
    return isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    node = dict(cfg.SOLVER.OPTIMIZER)
    node.setdefault("WEIGHT_DECAY", cfg.SOLVER.WEIGHT_DECAY)
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS.build(node, params=params, lr=cfg.SOLVER.BASE_LR)


def build_scheduler(cfg, optimizer: torch.optim.Optimizer):
    return SCHEDULERS.build(cfg.SOLVER.SCHEDULER, optimizer=optimizer, epochs=cfg.SOLVER.EPOCHS)
