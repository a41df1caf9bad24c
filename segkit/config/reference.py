"""The key catalogue, read out of ``defaults.py`` itself: every key with its default and the
comment written above it there. The docs site's key reference is generated from this at build
time, so the page cannot drift from the defaults it describes."""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import yaml

from . import defaults, flatten_config
from .defaults import get_default_config

__all__ = ["KeyDoc", "key_docs", "key_reference_markdown"]


@dataclass(frozen=True)
class KeyDoc:
    """One key of the defaults: ``SOLVER.BASE_LR``, its default value, the comment above it, and the
    top-level section it belongs to (``SOLVER``; ``""`` for top-level keys)."""

    key: str
    default: Any
    meaning: str
    section: str


def _target_key(node: ast.Assign) -> Optional[str]:
    """``_C.SOLVER.BASE_LR = …`` -> ``"SOLVER.BASE_LR"``; anything else -> None."""
    if len(node.targets) != 1:
        return None
    parts = []
    target = node.targets[0]
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if not (isinstance(target, ast.Name) and target.id == "_C" and parts):
        return None
    return ".".join(reversed(parts))


def _comment_above(lines: List[str], lineno: int) -> Optional[str]:
    """The comment block ending on the line before ``lineno`` (1-based), joined into one paragraph;
    None when the line before is code (the key shares the comment of the key above it)."""
    block = []
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        text = lines[i].strip().strip("#").strip()
        if text and set(text) <= set("-"):  # a section rule: the comment above it is not about this key
            break
        block.append(text)
        i -= 1
    if not block and i >= 0 and lines[i].strip():
        return None
    return " ".join(reversed(block))


def key_docs() -> List[KeyDoc]:
    """Every leaf key of the defaults, in the order ``defaults.py`` defines them."""
    source = inspect.getsource(defaults)
    lines = source.splitlines()
    values = flatten_config(get_default_config(), keep_empty=False)
    comments: Dict[str, str] = {}
    previous = ""
    for node in ast.parse(source).body:
        key = isinstance(node, ast.Assign) and _target_key(node)
        if not key:
            continue
        comment = _comment_above(lines, node.lineno)
        previous = previous if comment is None else comment
        comments[key] = previous
    out = []
    for key, value in values.items():
        meaning = comments.get(key, "")
        parent = key.rpartition(".")[0]
        if not meaning and parent in comments:  # NAME of a component node: the node's comment
            meaning = comments[parent]
        out.append(KeyDoc(key, value, meaning, key.split(".")[0] if "." in key else ""))
    return out


def _inline_yaml(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def key_reference_markdown() -> str:
    """Markdown tables of every key, one table per top-level section."""
    docs = key_docs()
    parts: List[str] = []
    for section in dict.fromkeys(d.section for d in docs):
        title = section or "Top level"
        parts += [f"## {title}", "", "| key | default | meaning |", "|---|---|---|"]
        for d in docs:
            if d.section == section:
                parts.append(f"| `{d.key}` | `{_cell(_inline_yaml(d.default))}` | {_cell(d.meaning)} |")
        parts.append("")
    return "\n".join(parts)
