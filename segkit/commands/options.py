"""The options commands share, defined once: CONFIG, KEY VALUE overrides, --plugin, --json-out;
and the checks every command that writes makes on its output paths before its work starts."""
from __future__ import annotations

import argparse
import os
import re
from typing import List, Optional, Sequence, Tuple

from ..utils.files import atomic_write_json, nearest_existing
from .jsonout import finite_or_none

__all__ = ["OVERRIDES_HELP", "add_config", "add_overrides", "add_plugin", "add_json_out", "write_json_out",
           "check_output_file", "check_output_dir", "check_prediction_dir", "split_overrides", "load_setup"]

OVERRIDES_HELP = "config overrides as KEY VALUE pairs, e.g. SOLVER.EPOCHS 10 DATA.ROOT /data/pets"
# A config key: upper-case words joined by dots (SEED, SOLVER.BASE_LR, TEST.TTA.FLIP).
_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*")


def add_config(parser: argparse.ArgumentParser,
               help: str = "experiment YAML file, or the name of a packaged config (segkit list configs)") -> None:
    parser.add_argument("config", help=help)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help=OVERRIDES_HELP)


def add_plugin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import this file (or module) first, so the classes it registers can be used "
                             "(repeatable)")


def add_json_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json-out", metavar="PATH", help="also write the result as JSON to PATH (atomically: "
                        "a reader never sees half a file). Checked before the work starts: PATH may not be a "
                        "folder, lie under a file or inside DATA.ROOT, or be one of the command's inputs")


def write_json_out(path: str, result) -> None:
    """The ``--json-out`` file, when one was asked for: strict JSON (NaN and infinities as null)."""
    if path:
        atomic_write_json(path, finite_or_none(result), allow_nan=False)  # creates the folder too


def _check_creatable(option: str, path: str, folder: str) -> None:
    """``path`` can be written in (or as) ``folder``: the nearest existing path at or above
    ``folder`` is a folder, and writable."""
    anchor = nearest_existing(folder)
    if not os.path.isdir(anchor):
        raise NotADirectoryError(f"{option} '{path}' cannot be written: '{anchor}' is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} '{path}' cannot be written: folder '{anchor}' is not writable")


def check_output_file(option: str, path: Optional[str], data_root: str = "", inputs: Sequence[str] = ()) -> None:
    """Before the work starts: the file ``path`` (given as ``option``) can be written. One clear
    error naming the path when it is a folder, lies under a file or in an unwritable folder,
    lies inside the dataset ``data_root``, or is one of the command's ``inputs``."""
    if not path:
        return
    if os.path.isdir(path):
        raise IsADirectoryError(f"{option} '{path}' is a folder; give a file path, e.g. "
                                f"{os.path.join(path, 'result.json' if option == '--json-out' else 'model')}")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"{option} '{path}' exists and is not a regular file; give a file path")
    _check_creatable(option, path, os.path.dirname(os.path.abspath(path)))
    from ..visualize import refuse_dataset_overlap

    refuse_dataset_overlap(path, data_root, what=option, may_hold=True)
    for item in inputs:
        if item and os.path.isfile(item) and os.path.isfile(path) and os.path.samefile(item, path):
            raise ValueError(f"{option} '{path}' is one of this command's inputs ('{item}'); writing it would "
                             f"destroy it. Give another path")


def check_output_dir(option: str, path: Optional[str], data_root: str = "") -> None:
    """Before the work starts: the folder ``path`` is (or can become) a writable folder outside the
    dataset ``data_root`` (neither inside it nor holding it)."""
    if not path:
        return
    if os.path.lexists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{option} '{path}' is a file, not a folder")
    _check_creatable(option, path, path)
    from ..visualize import refuse_dataset_overlap

    refuse_dataset_overlap(path, data_root, what=option)


def check_prediction_dir(option: str, path: Optional[str], data_root: str = "") -> None:
    """``check_output_dir`` for a folder masks and overlays go to, plus PredictionWriter's own
    check: nothing there it would replace was written by anyone but segkit."""
    if not path:
        return
    check_output_dir(option, path, data_root)
    from ..visualize import check_prediction_dir as check_writer_dir

    try:
        check_writer_dir(path, data_root)
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from e


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
