"""report.json: the run as data (schema: report.schema.json), also read by ``evalsuite compare``.

Written in one orjson pass over the items as they are (no ``asdict`` copy, no second walk to make them plain):
the document is indented, and each per-example record is one compact line, so 25,000 records are 25,000 lines
(37 MB with their prompts, about 0.3 s) that still diff by example. Each record's bytes are an exact-size copy:
orjson's own keep a buffer of 4 KB or more, and 25k records held 295 MB instead of 37 MB while the file was
written. A value orjson cannot write as the JSON the old writer wrote (a dict with a non-text key, an integer
beyond 64 bits) takes the ``jsonable`` path for the whole file.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from evalsuite._util.jsonable import SCHEMA_VERSION, compact_json, jsonable
from evalsuite.records import ItemResult
from evalsuite.report._common import item_status, summary

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
_ITEM_FIELDS = tuple(f.name for f in fields(ItemResult))


def report_document(items: list[ItemResult], run: dict[str, Any]) -> dict[str, Any]:
    """The report.json content as plain data; ``run`` is the run metadata (``_common.run_metadata``)."""
    return jsonable(_document(items, run, [item.to_dict() for item in items]))


def render_json(items: list[ItemResult], run: dict[str, Any]) -> str:
    try:
        records = [[orjson.Fragment(compact_json(r, default=_plain, option=orjson.OPT_PASSTHROUGH_DATETIME))
                    for r in item.records] for item in items]
        shallow = [{**{name: getattr(item, name) for name in _ITEM_FIELDS}, "records": rows}
                   for item, rows in zip(items, records)]
        text = orjson.dumps(_document(items, run, shallow), default=_plain,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # what jsonable writes differently (str() of a non-text key, a huge int)
        return json.dumps(report_document(items, run), indent=1, ensure_ascii=False) + "\n"
    return text.decode("utf-8")


def _document(items: list[ItemResult], run: dict[str, Any], item_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        "summary": summary(items),
        "items": [{**data, "identity": item.identity, "status": item_status(item)} for item, data in zip(items, item_dicts)],
    }


def _plain(value: Any) -> Any:
    """What orjson does not write itself, as ``jsonable`` writes it: sets as lists, numpy scalars as numbers, other
    objects as text (a float subclass is a number: orjson writes only exact floats)."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, float):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
