"""The embeddings response a cassette may hold beside completions: recognised and checked like one.

Why: ``semantic_similarity`` records ``/v1/embeddings`` calls, whose body is ``{"data": [{"embedding": [...]}],
"usage": {...}}``, not a completion. The recording filter keeps such a 2xx body, and a loaded cassette checks
it field by field (a hand edit is an error naming the interaction and the field), as it does completions.
An embedding is a list of numbers, or a list of per-token vectors (llama.cpp's server for a model without
pooling).
"""

from __future__ import annotations

from typing import Any

from evalsuite.cassettes._format import USAGE_COUNTS, ShapeError, _expect

_NUMBER = (int, float)


def is_embeddings(data: object) -> bool:
    """The shape of an embeddings list: an object whose ``data`` is a list of objects with an ``embedding``."""
    items = data.get("data") if isinstance(data, dict) and "choices" not in data else None
    return isinstance(items, list) and all(isinstance(item, dict) and "embedding" in item for item in items)


def check_embeddings(data: Any, where: str) -> None:
    """Raise :class:`ShapeError` unless ``data`` is an embeddings body as ``model._embeddings`` reads it."""
    _expect(data, dict, where, 'an embeddings object {"data": [{"embedding": [...]}], ...}')
    items = data.get("data")
    _expect(items, list, f"{where}.data", "a list of embedding objects")
    for index, item in enumerate(items):
        at = f"{where}.data[{index}]"
        _expect(item, dict, at, 'an object like {"embedding": [0.1, ...], "index": 0}')
        vector = item.get("embedding")
        _expect(vector, list, f"{at}.embedding", "a list of numbers")
        rows = vector if vector and isinstance(vector[0], list) else [vector]
        for row in rows:
            _expect(row, list, f"{at}.embedding", "a list of numbers (or of per-token lists of numbers)")
            bad = [value for value in row if not isinstance(value, _NUMBER) or isinstance(value, bool)]
            if bad or not row:
                raise ShapeError(f"{at}.embedding", "expected a non-empty list of numbers"
                                 + (f", found {type(bad[0]).__name__} {bad[0]!r}" if bad else ""))
        if item.get("index") is not None:
            _expect(item["index"], int, f"{at}.index", "an integer")
    usage = data.get("usage")
    _expect(usage, (dict, type(None)), f"{where}.usage", "an object of token counts or null")
    for count in USAGE_COUNTS if usage else ():
        if usage.get(count) is not None:
            _expect(usage[count], int, f"{where}.usage.{count}", "an integer token count or null")
