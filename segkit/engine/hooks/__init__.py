"""Training hooks; importing this package registers the standard ones in HOOKS."""
from .base import HookBase, build_hooks
from .checkpoint import CheckpointHook
from .early_stopping import EarlyStoppingHook
from .ema import EMAHook
from .evaluation import EvalHook
from .logging_hooks import JSONLoggerHook, ProgressBarHook, TextLoggerHook
from .lr_scheduler import LRSchedulerHook
from .tensorboard import TensorBoardHook, prediction_grid

__all__ = ["HookBase", "build_hooks", "CheckpointHook", "EarlyStoppingHook", "EMAHook", "EvalHook", "JSONLoggerHook",
           "ProgressBarHook", "TextLoggerHook", "LRSchedulerHook", "TensorBoardHook", "prediction_grid"]
