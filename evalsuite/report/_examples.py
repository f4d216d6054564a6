"""Per-example data for report.html: what its drill-down shows, and the few rows the page shows without script.

Every example of an item goes into the page as compact JSON (rows as arrays, the prompt's shared start once per
item), which the page's script pages through, sorts, filters and searches: a 25k-example item stays one file of
bounded size whose page opens fast, since only one page of rows is ever in the document.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson

from evalsuite.records import ExampleRecord, ItemResult, MetricResult

# Row layout (the page's script reads the same positions): key, prompt, expected, answer, prediction, flags,
# scores (one per column of "metrics"), error, index into "flips" (-1: none).
UNPARSED, ERROR, WRONG = 1, 2, 4
CELL_CHARS = 600  # of an expected value or prediction that is not a string (a list, a dict), written as JSON
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def score_columns(item: ItemResult) -> list[MetricResult]:
    """Metrics whose per-example values are numbers (corpus statistics such as BLEU's n-gram counts are not)."""
    return [m for m in item.metrics
            if any(isinstance(r.scores.get(m.name), (int, float)) for r in item.records[:200])]


def is_wrong(r: ExampleRecord, proportions: Sequence[MetricResult]) -> bool:
    """An error, an unparsed answer, or the failing value of a 0/1 metric."""
    if r.error or not r.parsed:
        return True
    for m in proportions:
        value = r.scores.get(m.name)
        if isinstance(value, (int, float)) and value == (0 if m.higher_is_better else 1):
            return True
    return False


def cell(value: Any) -> Any:
    """An expected value or prediction as the page shows it: strings as they are, anything else as short JSON."""
    if value is None or isinstance(value, str):
        return value
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 6)
    return None


def word_diff(before: str, after: str) -> list[tuple[int, str]]:
    """``before`` -> ``after`` as (0 kept | -1 removed | 1 added, text) runs of words, spaces and punctuation."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    out: list[tuple[int, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append((0, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append((-1, "".join(a[i1:i2])))
        if j2 > j1:
            out.append((1, "".join(b[j1:j2])))
    return out


def flip_entries(item: ItemResult) -> list[dict[str, Any]]:
    """The item's flipped examples, each with the word diff of the baseline's answer and this run's."""
    out = []
    for flip in item.flipped:
        before, after = flip.get("baseline_answer"), flip.get("answer")
        diff = word_diff(str(before), str(after)) if isinstance(before, str) and isinstance(after, str) else []
        out.append({"example": str(flip.get("example_id")), "metric": str(flip.get("metric")),
                    "before": _number(flip.get("before")), "after": _number(flip.get("after")),
                    "baseline": before, "answer": after, "diff": diff})
    return out


def worst_examples(item: ItemResult, m: MetricResult, limit: int) -> list[ExampleRecord]:
    """Distinct examples that went worst on ``m``: errors and unparsed answers first, then by value in the bad
    direction; right answers of a 0/1 metric are left out (a corpus metric has no per-example value: its
    examples whose prediction differs from the expected value, in order)."""
    sign = 1.0 if m.higher_is_better else -1.0
    right = 1 if m.higher_is_better else 0
    ranked: list[tuple[float, int, ExampleRecord]] = []
    for i, r in enumerate(item.records):
        value = _number(r.scores.get(m.name))
        if r.error or not r.parsed:
            ranked.append((-math.inf, i, r))
        elif value is not None and not (m.kind == "proportion" and value == right):
            ranked.append((sign * value, i, r))
        elif value is None and r.prediction != r.expected:
            ranked.append((0.0, i, r))
    ranked.sort(key=lambda entry: (entry[0], entry[1]))
    out: list[ExampleRecord] = []
    seen: set[str] = set()
    for _, _, r in ranked:
        if r.example_id not in seen:
            seen.add(r.example_id)
            out.append(r)
        if len(out) == limit:
            break
    return out


def item_data(item: ItemResult) -> dict[str, Any]:
    """What the page's script needs to show every example of ``item``."""
    columns = score_columns(item)
    proportions = [m for m in item.metrics if m.kind == "proportion"]
    flips = flip_entries(item)
    flip_of: dict[str, int] = {}
    for i, flip in enumerate(flips):
        flip_of.setdefault(flip["example"], i)
    repeats = any(r.sample for r in item.records)
    has_prompt = any(r.prompt is not None for r in item.records)
    rows = []
    for r in item.records:
        flags = (ERROR if r.error else UNPARSED if not r.parsed else 0)
        flags |= WRONG if is_wrong(r, proportions) else 0
        rows.append([str(r.key) if repeats else r.example_id, r.prompt if has_prompt else r.input_excerpt,
                     cell(r.expected), r.answer, cell(r.prediction), flags,
                     [_number(r.scores.get(m.name)) for m in columns], r.error, flip_of.get(r.example_id, -1)])
    return {"prefix": item.prompt_prefix, "prompt": has_prompt, "metrics": [m.name for m in columns],
            "better": [m.higher_is_better for m in columns], "rows": rows, "flips": flips}


def script_json(data: Any) -> str:
    """JSON that can sit inside ``<script type="application/json">``: every ``<`` written ``\\u003c``, so no text
    can close the element or open a comment (the secret scrubber knows this form too)."""
    return orjson.dumps(data, default=str).decode().replace("<", "\\u003c")
