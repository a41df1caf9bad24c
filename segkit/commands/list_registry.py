"""List registered components, and the packaged configs, with a one-line description each.

    segkit list                               # every registry and the packaged configs
    segkit list backbones --filter resnet     # segkit's and timm's (as tu-<name>) encoders
    segkit list configs --filter report       # configs any command takes by name

A filter without wildcards matches anywhere in the name; with backbones it also lists the
matching timm models, usable as ``MODEL.BACKBONE.NAME tu-<name>``.
"""
from __future__ import annotations

from typing import Optional

from .options import add_plugin

HELP = ("list registered backbones, decoders, losses, transforms, hooks, datasets, optimizers, schedulers, "
        "and the packaged configs")
REGISTRIES = ("backbones", "datasets", "decoders", "hooks", "losses", "optimizers", "schedulers", "transforms")
CONFIGS = "configs"


def add_arguments(parser) -> None:
    parser.add_argument("registry", nargs="?", choices=REGISTRIES + (CONFIGS,),
                        help="one registry, or configs (default: all)")
    parser.add_argument("--filter", default=None, help="fnmatch pattern, e.g. '*unet*'; plain text matches "
                        "anywhere in the name (with backbones it also lists timm models as tu-<name>)")
    add_plugin(parser)


def first_sentence(doc: Optional[str], width: int = 100) -> str:
    """The docstring's first sentence on one line, shortened to ``width`` characters."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


def run(args) -> int:
    pattern = args.filter
    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    if args.registry != CONFIGS:
        _list_registries(args.registry, pattern, args.plugin)
    if args.registry in (None, CONFIGS):
        _list_configs(pattern)
    return 0


def _list_registries(only: Optional[str], pattern: Optional[str], plugins) -> None:
    from .. import data, engine, losses, models, solver  # noqa: F401  (fill the registries)
    from ..plugins import import_plugins
    from ..registry import ALL_REGISTRIES

    import_plugins(plugins)
    for name in [only] if only else sorted(ALL_REGISTRIES):
        reg = ALL_REGISTRIES[name]
        print(f"{name}:")
        for entry in reg.list(filter=pattern):
            print(f"  {entry:<28} {first_sentence(reg.get(entry).__doc__)}")
        if name == "backbones":
            _list_timm(pattern)


def _list_configs(pattern: Optional[str]) -> None:
    """Packaged configs by name: what ``segkit train NAME`` (or any command's CONFIG) accepts."""
    from ..config import config_names
    from ..config.catalog import config_summary, packaged_config

    print(f"{CONFIGS}:")
    for name in config_names(pattern):
        print(f"  {name:<34} {first_sentence(config_summary(str(packaged_config(name))), width=90)}")


def _list_timm(pattern: Optional[str]) -> None:
    if pattern:
        import timm

        for model in timm.list_models(pattern):
            print(f"  {'tu-' + model:<28} timm model '{model}' (features_only encoder)")
    else:
        print(f"  {'tu-<name>':<28} any timm model as an encoder; find names with --filter, e.g. "
              f"segkit list backbones --filter resnet")
