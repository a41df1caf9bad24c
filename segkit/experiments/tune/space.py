"""The search space: one parameter per config key, written ``KEY=SPEC`` on the command line and
``KEY: SPEC`` in a tune file.

SPEC is ``log:LOW:HIGH`` (a float drawn on a log scale), ``float:LOW:HIGH``, ``int:LOW:HIGH`` or
``choice:a,b,c`` (values read as the command line reads an override, so ``choice:4,8`` is two
integers). A group key (``MODEL``, ``AUGMENT``, ``SCHEDULE``, ``DATASET``) picks a whole
``configs/_base_/`` file, as in a sweep: ``MODEL=choice:unet,resnet34_unet``. The Optuna
parameter name is the config key, so the study's tables and plots speak in keys.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from ...config import parse_value
from ..sweep.grid import GROUP_DIRS, SweepError, split_values

__all__ = ["TuneError", "Param", "parse_spec", "parse_space_arg", "space_signature", "KINDS"]

KINDS = ("log", "float", "int", "choice")


class TuneError(SweepError):
    """A search space, tune file, storage or study that cannot make a study."""


@dataclass(frozen=True)
class Param:
    """One searched config key: ``kind`` is one of KINDS; ``low``/``high`` bound the ranges and
    ``choices`` lists a choice's values."""

    key: str
    kind: str
    low: Any = None
    high: Any = None
    choices: Tuple[Any, ...] = ()

    @property
    def is_group(self) -> bool:
        return self.key in GROUP_DIRS

    def suggest(self, trial) -> Any:
        """This parameter's value for an Optuna ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high)
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.key}=choice:{','.join(map(str, self.choices))}"
        return f"{self.key}={self.kind}:{self.low:g}:{self.high:g}"

    def sample_values(self) -> List[Any]:
        """Values that stand for the whole range when the config checks a key (its ends, every choice)."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


def _number(text: str, kind: str, what: str) -> float:
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TuneError(f"{what}: '{text}' is not a finite number")
    if kind == "int" and not isinstance(value, int):
        raise TuneError(f"{what}: '{text}' is not an integer (int:LOW:HIGH takes whole numbers)")
    return value


def parse_spec(key: str, spec: Any) -> Param:
    """``Param`` of ``key`` from a SPEC string (a tune file may also give a choice as a YAML list)."""
    what = f"search space {key}"
    if isinstance(spec, (list, tuple)):
        choices = tuple(spec)
        kind, rest = "choice", None
    else:
        kind, sep, rest = str(spec).partition(":")
        if not sep or kind not in KINDS:
            raise TuneError(f"{what}: '{spec}' is not a SPEC; write log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or "
                            f"choice:a,b,c")
    if key == "OUTPUT_DIR":
        raise TuneError("OUTPUT_DIR cannot be searched: the study names each trial's folder; use --output-root "
                        "and --study")
    if kind == "choice":
        if rest is not None:
            choices = tuple(parse_value(v) for v in split_values(rest) if v != "")
        bad = [c for c in choices if not (c is None or isinstance(c, (bool, int, float, str)))]
        if bad:
            raise TuneError(f"{what}: choice values must be single numbers, words or true/false (Optuna stores them "
                            f"as is); got {bad[0]!r}")
        if not choices:
            raise TuneError(f"{what}: choice needs at least one value, as in choice:a,b")
        if len(set(map(repr, choices))) != len(choices):
            raise TuneError(f"{what}: choice lists a value twice ({', '.join(map(str, choices))})")
        return Param(key, kind, choices=choices)
    bounds = rest.split(":")
    if len(bounds) != 2 or not all(b.strip() for b in bounds):
        raise TuneError(f"{what}: '{spec}' needs two bounds, as in {kind}:LOW:HIGH")
    low, high = (_number(b.strip(), kind, what) for b in bounds)
    if low > high:
        raise TuneError(f"{what}: LOW {low:g} is greater than HIGH {high:g} in '{spec}'; write {kind}:{high:g}:{low:g}")
    if kind == "log" and low <= 0:
        raise TuneError(f"{what}: a log range needs LOW > 0, got {low:g} in '{spec}'")
    return Param(key, kind, float(low) if kind != "int" else low, float(high) if kind != "int" else high)


def parse_space_arg(text: str) -> Param:
    """``--space KEY=SPEC`` -> Param."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip() or not spec.strip():
        raise TuneError(f"--space '{text}': expected KEY=SPEC, e.g. SOLVER.BASE_LR=log:1e-5:1e-3")
    return parse_spec(key.strip(), spec.strip())


def space_signature(space: Sequence[Param]) -> Dict[str, str]:
    """The space as text, stored with a study so a worker started with another space is refused."""
    return {p.key: p.describe() for p in space}
