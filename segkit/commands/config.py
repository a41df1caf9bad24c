"""Show a config as segkit reads it, or where a packaged config lives.

    segkit config show quickstart                    # every key, defaults included
    segkit config show unet_aug_cosine > my.yaml     # an editable copy that loads back the same
    segkit config show quickstart SOLVER.EPOCHS 3    # with overrides applied
    segkit config path report/lr                     # the packaged file, e.g. to read its _BASE_

CONFIG is a path or the name of a packaged config (``segkit list configs``). ``show`` prints the
merged result of the defaults, the ``_BASE_`` chain, the file and the overrides: training from
the printed file is training from CONFIG with those overrides.
"""
from __future__ import annotations

from .. import __version__
from .options import add_config, add_overrides

HELP = "print a config merged with its _BASE_ chain and the defaults, or a packaged config's path"
ACTIONS = ("show", "path")


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="show: the merged config as YAML; path: the file CONFIG "
                        "names")
    add_config(parser)
    add_overrides(parser)


def run(args) -> int:
    from ..config import load_config, resolve_config
    from ..experiments.sweep import read_sweep_file

    path = resolve_config(args.config)
    if args.action == "path":
        if args.opts:
            raise ValueError(f"segkit config path takes no overrides; got {' '.join(args.opts)}")
        print(path)
        return 0
    if read_sweep_file(path) is not None:
        raise ValueError(f"'{args.config}' is a sweep file (a grid of runs over its BASE), not one config: "
                         f"run it with segkit sweep {args.config} (--dry-run lists its runs), or show its BASE "
                         f"(segkit config path {args.config} names the file to read)")
    cfg = load_config(path, args.opts)
    given = " ".join([args.config, *args.opts])
    print(f"# segkit {__version__}: '{given}' merged with its _BASE_ chain and every default.\n"
          f"# Train from a copy: segkit config show {given} > my.yaml && segkit train my.yaml")
    print(cfg.dump(), end="")
    return 0
