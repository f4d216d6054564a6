"""The JSON documents evalsuite writes (report.json, baseline files): plain data, and the schema version they carry."""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from typing import Any

import orjson

# Additive changes keep version 1; removals or renames bump it (readers refuse other versions).
SCHEMA_VERSION = 1


def jsonable(value: Any) -> Any:
    """Plain JSON data: dataclasses as dicts, tuples/sets as lists, NaN/inf as null, other objects as str."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def compact_json(value: Any, **options: Any) -> bytes:
    """``orjson.dumps`` (with its ``default`` / ``option``) as an exact-size copy: the bytes orjson returns keep at
    least a 4 KB buffer (16 KB for a 1.4 KB review; measured with orjson 3.13), so 25k of them held 400 MB for 50."""
    return bytes(memoryview(orjson.dumps(value, **options)))
