"""Training, evaluation and checkpointing."""
from .checkpoint import atomic_save, load_checkpoint, load_model_weights
from .evaluator import Evaluator
from .hooks import HookBase
from .launch import setup
from .build import build_evaluator, prepare_model
from .evaluation import evaluate_checkpoint
from .trainer import Trainer

__all__ = ["atomic_save", "load_checkpoint", "load_model_weights", "Evaluator", "HookBase", "setup",
           "Trainer", "build_evaluator", "evaluate_checkpoint", "prepare_model"]
