"""The options commands share, defined once: CONFIG, KEY VALUE overrides, --plugin, --json-out."""
from __future__ import annotations

import argparse
import os
import re
from typing import List, Sequence, Tuple

__all__ = ["OVERRIDES_HELP", "add_config", "add_overrides", "add_plugin", "add_json_out", "write_json_out",
           "split_overrides", "load_setup"]

OVERRIDES_HELP = "config overrides as KEY VALUE pairs, e.g. SOLVER.EPOCHS 10 DATA.ROOT /data/pets"
# A config key: upper-case words joined by dots (SEED, SOLVER.BASE_LR, TEST.TTA.FLIP).
_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*")


def add_config(parser: argparse.ArgumentParser, help: str = "experiment YAML file") -> None:
    parser.add_argument("config", help=help)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help=OVERRIDES_HELP)


def add_plugin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import this file (or module) first, so the classes it registers can be used "
                             "(repeatable)")


def add_json_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json-out", metavar="PATH", help="also write the result as JSON to PATH (atomically: "
                        "a reader never sees half a file)")


def write_json_out(path: str, result) -> None:
    """The ``--json-out`` file, when one was asked for."""
    if path:
        from ..utils.files import atomic_write_json

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write_json(path, result)


def split_overrides(tokens: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(items, overrides) of a variadic positional list such as infer's INPUT… KEY VALUE…:
    the overrides start at the first token that reads as a config key and is not a path."""
    for i, token in enumerate(tokens):
        if _KEY.fullmatch(token) and not os.path.exists(token):
            return list(tokens[:i]), list(tokens[i:])
    return list(tokens), []


def load_setup(args, training: bool, extra_opts: Sequence[str] = ()):
    """The frozen config of ``args.config`` + overrides, with plugins imported and logging set up."""
    from ..engine import setup

    return setup(args.config, list(args.opts) + list(extra_opts), args.plugin, training=training)
