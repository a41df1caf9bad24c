"""Name → class tables, so an experiment names its parts in YAML and user code can add more.

A registered object is built from a config node: ``NAME`` picks the entry, every other key
is passed as a lower-case keyword argument. Each registry's docstring below states what
its entries must accept and return.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Any, Dict, Iterator, Mapping, Optional

__all__ = [
    "Registry", "BACKBONES", "DECODERS", "LOSSES", "TRANSFORMS", "HOOKS", "DATASETS",
    "OPTIMIZERS", "SCHEDULERS", "ALL_REGISTRIES", "node_kwargs",
]


def node_kwargs(node: Mapping[str, Any]) -> Dict[str, Any]:
    """Keyword arguments of a component node: every key but NAME, lower-cased."""
    return {str(k).lower(): v for k, v in node.items() if str(k).upper() != "NAME"}


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class Registry:
    """A named table of objects; register with a decorator, look up or build by name."""

    def __init__(self, name: str, doc: str = ""):
        self._name = name
        self._obj_map: Dict[str, Any] = {}
        self.__doc__ = doc or f"Registry of {name}."

    @property
    def name(self) -> str:
        return self._name

    def register(self, obj: Any = None, *, name: Optional[str] = None) -> Any:
        """``@REG.register()``, ``@REG.register(name="x")`` or ``REG.register(obj, name=...)``."""
        if obj is None:
            def deco(o: Any) -> Any:
                self._add(name or o.__name__, o)
                return o
            return deco
        self._add(name or obj.__name__, obj)
        return obj

    def _add(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            old = self._obj_map[name]
            raise KeyError(
                f"'{name}' is already registered in the {self._name} registry "
                f"(by {getattr(old, '__module__', '?')}.{getattr(old, '__qualname__', old)}); "
                f"choose another name for {getattr(obj, '__module__', '?')}."
                f"{getattr(obj, '__qualname__', obj)}"
            )
        self._obj_map[name] = obj

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            raise KeyError(self._miss_message(name))
        return self._obj_map[name]

    def _miss_message(self, name: str) -> str:
        known = sorted(self._obj_map, key=_natural_key)
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.0)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        shown = ", ".join(known) if len(known) <= 40 else ", ".join(known[:40]) + ", …"
        return f"No {self._name} named '{name}'.{hint} Known {self._name}: {shown}"

    def build(self, node: Mapping[str, Any], **extra: Any) -> Any:
        """Call the entry named by ``node['NAME']`` with the node's other keys plus ``extra``."""
        if "NAME" not in node:
            raise KeyError(f"A {self._name} config node needs a NAME key; got keys {list(node)}")
        obj = self.get(node["NAME"])
        kwargs = {**node_kwargs(node), **extra}
        try:
            return obj(**kwargs)
        except TypeError as e:
            raise TypeError(f"Building {self._name} '{node['NAME']}' with {sorted(kwargs)} failed: {e}") from e

    def list(self, filter: str | list | None = None, exclude: str | list | None = None) -> list:
        """Registered names matching fnmatch ``filter`` and not ``exclude``, natural-sorted."""
        def as_list(x):
            return [] if x is None else [x] if isinstance(x, str) else list(x)
        names = list(self._obj_map)
        if filter:
            names = [n for n in names if any(fnmatch.fnmatch(n, f) for f in as_list(filter))]
        names = [n for n in names if not any(fnmatch.fnmatch(n, e) for e in as_list(exclude))]
        return sorted(names, key=_natural_key)

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._obj_map.items())

    def __len__(self) -> int:
        return len(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry({self._name!r}, {len(self)} entries: {', '.join(self.list())})"


BACKBONES = Registry("backbones", """Encoders: ``cls(in_channels=..., **kwargs) -> nn.Module``.

The module's ``forward(x)`` returns a list of feature maps, shallow to deep, and it declares
``out_channels`` (one int per map) and ``strides`` (one int per map, increasing).""")
DECODERS = Registry("decoders", """Heads: ``cls(encoder_channels, encoder_strides, num_classes, **kwargs)``.

``forward(features)`` takes the encoder's list and returns logits at stride 1.""")
LOSSES = Registry("losses", """Loss terms: ``cls(ignore_index=..., **kwargs)``; ``forward(logits, target)``
returns a scalar; ``per_image(logits, target)`` returns one value per image.""")
TRANSFORMS = Registry("transforms", """Paired image/mask transforms: albumentations classes
(all of them are registered under their own names) and segkit's own.""")
HOOKS = Registry("hooks", """Training hooks: ``cls(**kwargs)``, a ``segkit.engine.HookBase``.""")
DATASETS = Registry("datasets", """Datasets: ``cls(root, split, ignore_index, val_fraction, seed, **kwargs)``
with split in {'train', 'val', 'test'}; items are dicts with 'image' (HWC uint8 RGB ndarray),
'mask' (HW uint8 class labels, ``ignore_index`` where unlabelled) and 'name'.""")
OPTIMIZERS = Registry("optimizers", """Optimizers: ``fn(params, lr, weight_decay, **kwargs)``.""")
SCHEDULERS = Registry("schedulers", """LR schedules: ``fn(optimizer, epochs, **kwargs)`` returning a
torch LR scheduler stepped once per epoch (``ReduceLROnPlateau`` is stepped with the monitored value).""")

ALL_REGISTRIES = {r.name: r for r in (BACKBONES, DECODERS, LOSSES, TRANSFORMS, HOOKS, DATASETS,
                                      OPTIMIZERS, SCHEDULERS)}
