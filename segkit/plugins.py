"""Importing user code named in a config (CUSTOM_IMPORTS) or on a tool's command line (--plugin),
so classes it registers can be named in configs without editing segkit.
"""
import hashlib
import importlib
import importlib.util
import os
import sys
from typing import Iterable

__all__ = ["import_plugins"]


def _import_file(path: str) -> None:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Plugin file '{path}' does not exist")
    name = "segkit_plugin_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    if name in sys.modules:  # importing twice would register everything twice
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def import_plugins(names: Iterable[str]) -> None:
    """Import each dotted module name or ``.py`` file path, once."""
    for name in names or ():
        if name.endswith(".py") or os.sep in name:
            _import_file(name)
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(f"CUSTOM_IMPORTS / --plugin names module '{name}', which cannot be "
                                      f"imported ({e}); give a module on PYTHONPATH or a path to a .py file") from e
