"""List registered components with a one-line description each.

    segkit list                               # every registry
    segkit list backbones --filter resnet     # segkit's and timm's (as tu-<name>) encoders

A filter without wildcards matches anywhere in the name; with backbones it also lists the
matching timm models, usable as ``MODEL.BACKBONE.NAME tu-<name>``.
"""
from __future__ import annotations

from typing import Optional

from .options import add_plugin

HELP = "list registered backbones, decoders, losses, transforms, hooks, datasets, optimizers, schedulers"
REGISTRIES = ("backbones", "datasets", "decoders", "hooks", "losses", "optimizers", "schedulers", "transforms")


def add_arguments(parser) -> None:
    parser.add_argument("registry", nargs="?", choices=REGISTRIES, help="one registry (default: all)")
    parser.add_argument("--filter", default=None, help="fnmatch pattern, e.g. '*unet*'; plain text matches "
                        "anywhere in the name (with backbones it also lists timm models as tu-<name>)")
    add_plugin(parser)


def first_sentence(doc: Optional[str], width: int = 100) -> str:
    """The docstring's first sentence on one line, shortened to ``width`` characters."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


def run(args) -> int:
    from .. import data, engine, losses, models, solver  # noqa: F401  (fill the registries)
    from ..plugins import import_plugins
    from ..registry import ALL_REGISTRIES

    import_plugins(args.plugin)
    pattern = args.filter
    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    for name in [args.registry] if args.registry else sorted(ALL_REGISTRIES):
        reg = ALL_REGISTRIES[name]
        print(f"{name}:")
        for entry in reg.list(filter=pattern):
            print(f"  {entry:<28} {first_sentence(reg.get(entry).__doc__)}")
        if name == "backbones":
            _list_timm(pattern)
    return 0


def _list_timm(pattern: Optional[str]) -> None:
    if pattern:
        import timm

        for model in timm.list_models(pattern):
            print(f"  {'tu-' + model:<28} timm model '{model}' (features_only encoder)")
    else:
        print(f"  {'tu-<name>':<28} any timm model as an encoder; find names with --filter, e.g. "
              f"segkit list backbones --filter resnet")
