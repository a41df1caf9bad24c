"""The one command layer: ``segkit <command>``, ``python -m segkit`` and ``tools/*.py`` all call
``main``.

One parser tree: every command is a module of this package with ``HELP`` (its line in
``segkit --help``), ``add_arguments(parser)`` and ``run(args) -> exit status``; the module's
docstring is its ``--help`` description. Options every command shares (CONFIG, KEY VALUE
overrides, ``--plugin``, ``--json-out``) are defined once in ``options``; errors a user can fix
are reported by one handler in ``errors``. Library code never imports this package.

    from segkit.commands import main
    main(["train", "configs/quickstart.yaml", "SOLVER.EPOCHS", "1"])
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from typing import Dict, List, Optional, Tuple

from .. import __version__
from .errors import report_errors, stdout_closed

__all__ = ["COMMANDS", "build_parser", "build_parsers", "main"]

# command name -> module of this package. Modules import their heavy dependencies inside run(),
# so building the parser (and `segkit --help`) stays quick and one command's optional
# dependencies never break another.
COMMANDS = {
    "train": "train",
    "test": "test",
    "infer": "infer",
    "export": "export",
    "check-data": "check_data",
    "list": "list_registry",
    "config": "config",
    "sweep": "sweep",
    "tune": "tune",
    "summarize": "summarize",
    "benchmark": "benchmark",
    "ablate": "ablate",
}


_NEGATIVE_NUMBER = re.compile(r"^-(\.?\d|inf$|nan$)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the docstrings' paragraphs and examples as written."""


def _description(module) -> str:
    return (module.__doc__ or "").strip()


def build_parser() -> argparse.ArgumentParser:
    """``segkit`` with one sub-parser per command (each prog is ``segkit <command>``)."""
    return build_parsers()[0]


def build_parsers() -> Tuple[argparse.ArgumentParser, Dict[str, argparse.ArgumentParser]]:
    """``segkit``'s parser and each command's own, by name (the docs' command reference and the
    check of the commands the docs show parse with these)."""
    parser = argparse.ArgumentParser(
        prog="segkit", formatter_class=_Formatter,
        description="Train, evaluate and serve semantic-segmentation models from one YAML config.",
        epilog="`segkit <command> --help` describes a command. Set SEGKIT_DEBUG=1 for full tracebacks.")
    parser.add_argument("--version", action="version", version=f"segkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        sub = commands.add_parser(name, help=module.HELP, description=_description(module),
                                  formatter_class=_Formatter)
        module.add_arguments(sub)
        # A value such as `SOLVER.WEIGHT_DECAY -1e-4` or `-inf` is a value, not an unknown option: argparse
        # before Python 3.13 reads only plain negative numbers (-1, -0.5) as values. No option here
        # starts with a digit, so this is safe (it is 3.13's own rule, plus -inf/-nan).
        sub._negative_number_matcher = _NEGATIVE_NUMBER
        sub.set_defaults(run=module.run)
        subparsers[name] = sub
    return parser, subparsers


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns its exit status (2 for a usage or user error, 130 when interrupted,
    1 quietly when the reader of stdout has gone, as in ``segkit list | head -1``)."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, so a reader that has gone is noticed below
        return status
    except BrokenPipeError as e:
        return stdout_closed(e)


def _main(argv: Optional[List[str]]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = build_parsers()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    name = argv[0]
    if name.startswith("-"):
        parser.parse_args(argv)  # --help, --version, or an unknown option (exits)
        return 2
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"segkit: error: unknown command '{name}'.{hint} Commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    # Intermixed: options may come before, between or after the positionals and KEY VALUE pairs.
    args = subparsers[name].parse_intermixed_args(argv[1:])
    args.command = name
    return report_errors(args.run, args)
