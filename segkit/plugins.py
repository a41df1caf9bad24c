"""Importing user code named in a config (CUSTOM_IMPORTS) or on a tool's command line (--plugin),
so classes it registers can be named in configs without editing segkit.

A plugin that cannot be imported (missing, a folder, a syntax error, an exception while it
runs) is a ``PluginError`` naming the plugin, the file and line where it went wrong and the
error; ``SEGKIT_DEBUG=1`` shows the whole traceback (the original exception is chained).
"""
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Iterable, Optional

__all__ = ["import_plugins", "PluginError"]

WHERE = "CUSTOM_IMPORTS / --plugin"


class PluginError(ImportError):
    """A plugin named in CUSTOM_IMPORTS or by --plugin that cannot be imported."""


def _failure(what: str, e: BaseException, path: Optional[str] = None) -> PluginError:
    """One line: the plugin, where in its code (or the code it imports) the error arose, the error."""
    def at(filename: Optional[str], line: Optional[int]) -> str:
        same = filename and path and os.path.abspath(filename) == path
        return f" at {'' if same or not filename else filename + ', '}line {line}" if line else ""

    if isinstance(e, SyntaxError):
        code = f": {e.text.strip()}" if e.text and e.text.strip() else ""
        return PluginError(f"{WHERE} {what} has a syntax error{at(e.filename, e.lineno)}: {e.msg}{code}")
    frames = traceback.extract_tb(e.__traceback__)
    # The deepest frame in the plugin itself, else the deepest frame outside importlib.
    own = [f for f in frames if path and os.path.abspath(f.filename) == path]
    user = own or [f for f in frames if "importlib" not in f.filename]
    where = at(user[-1].filename, user[-1].lineno) if user else ""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)  # KeyError's str() adds quotes
    message = text.strip().splitlines()[0] if text.strip() else ""
    return PluginError(f"{WHERE} {what} failed while importing{where}: {type(e).__name__}"
                       f"{': ' + message if message else ''} (SEGKIT_DEBUG=1 shows the traceback)")


def _import_file(path: str) -> None:
    given, path = path, os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        raise PluginError(f"{WHERE} names '{given}', which is a folder; give a .py file or a module name")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Plugin file '{path}' does not exist")
    name = "segkit_plugin_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    if name in sys.modules:  # importing twice would register everything twice
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{WHERE} names '{given}', which Python cannot import as a module (not a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001  the user's code: any error is reported as theirs
        del sys.modules[name]
        raise _failure(f"file '{given}'", e, path) from e
    except BaseException:
        del sys.modules[name]
        raise


def import_plugins(names: Iterable[str]) -> None:
    """Import each dotted module name or ``.py`` file path, once."""
    for name in names or ():
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"{WHERE} holds {name!r}; give a module name or the path of a .py file")
        if name.endswith(".py") or os.sep in name or "/" in name:
            _import_file(name)
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and e.name != name and not name.startswith(e.name + "."):
                raise _failure(f"module '{name}'", e) from e  # the plugin imports something missing
            raise ModuleNotFoundError(f"{WHERE} names module '{name}', which cannot be "
                                      f"imported ({e}); give a module on PYTHONPATH or a path to a .py file") from e
        except Exception as e:  # noqa: BLE001  the user's code: any error is reported as theirs
            raise _failure(f"module '{name}'", e, _origin(name)) from e


def _origin(name: str) -> Optional[str]:
    """The file of module ``name``, if it can be found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # noqa: BLE001  only a better message is at stake
        return None
    return os.path.abspath(spec.origin) if spec is not None and spec.origin else None
