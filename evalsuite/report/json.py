"""report.json: the run as data (schema: report.schema.json), also read by ``evalsuite compare``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsuite._util.jsonable import SCHEMA_VERSION, jsonable
from evalsuite.records import ItemResult
from evalsuite.report._common import item_status, summary

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def report_document(items: list[ItemResult], run: dict[str, Any]) -> dict[str, Any]:
    """The report.json content; ``run`` is the run metadata (``_common.run_metadata``)."""
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        "summary": summary(items),
        "items": [{**item.to_dict(), "identity": item.identity, "status": item_status(item)} for item in items],
    })


def render_json(items: list[ItemResult], run: dict[str, Any]) -> str:
    return json.dumps(report_document(items, run), indent=1, ensure_ascii=False) + "\n"
