"""The JSON line commands print last: strict JSON that any parser reads.

Python's ``json`` writes NaN and Infinity as bare ``NaN`` / ``Infinity``, which are not JSON
(``jq``, JavaScript and most parsers reject the line). A metric with no value (a mean over no
images, a precision with nothing predicted) is written as ``null`` instead.
"""
from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["finite_or_none", "to_json"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts, lists and tuples, made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def to_json(result: Any) -> str:
    """One line of strict JSON (NaN and infinities as null)."""
    return json.dumps(finite_or_none(result), allow_nan=False)
