"""Stage 7: the committed baseline that later runs are compared against.

A baseline stores, per item, every metric's aggregate *and* its per-example values keyed by
``"<example_id>#<sample>"``: the paired tests in ``verdict`` need the per-example values, and the
model/params/dataset fingerprint tell a reviewer what the baseline was measured on. Writing merges
into an existing file (items not run this time are kept) and is atomic (temp file + rename), so an
interrupted run never leaves half a baseline. ``load_baseline`` also accepts a ``report.json``, so
any earlier report can serve as a baseline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsuite._util.atomic import write_atomic
from evalsuite._util.jsonable import SCHEMA_VERSION, jsonable
from evalsuite.errors import BaselineError
from evalsuite.records import ItemResult

KIND = "evalsuite-baseline"


@dataclass
class BaselineMetric:
    value: float | None
    per_example: dict[str, Any]
    higher_is_better: bool = True
    interval: str = ""
    kind: str = ""
    min: float | None = None
    max: float | None = None
    definition: str = ""


@dataclass
class BaselineItem:
    item_id: str
    metrics: dict[str, BaselineMetric]
    model: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    dataset_fingerprint: str = ""
    n_examples: int = 0
    unparsed: int = 0
    errors: int = 0


@dataclass
class Baseline:
    path: Path
    created_at: str
    items: dict[str, BaselineItem]
    source: str = "baseline"  # "baseline" | "report"

    def item(self, item_id: str) -> dict[str, dict[str, Any]] | None:
        """Per-example values by metric name for one item, or None when the baseline lacks the item."""
        entry = self.items.get(item_id)
        if entry is None:
            return None
        return {name: metric.per_example for name, metric in entry.metrics.items()}


def _item_from_result(item: ItemResult) -> BaselineItem:
    """What a baseline keeps of an item: the same whether it comes from this run or from a report.json."""
    metrics: dict[str, BaselineMetric] = {}
    for m in item.metrics:
        per_example = {str(r.key): r.scores[m.name] for r in item.records if m.name in r.scores}
        metrics[m.name] = BaselineMetric(
            value=m.value, per_example=per_example, higher_is_better=m.higher_is_better,
            interval=m.interval, kind=m.kind, min=m.min, max=m.max, definition=m.definition,
        )
    return BaselineItem(
        item_id=item.item_id, metrics=metrics, model=item.model, params=item.params,
        dataset_fingerprint=item.dataset_fingerprint, n_examples=item.n_examples,
        unparsed=item.unparsed, errors=item.errors,
    )


def write_baseline(path: Path | str, items: list[ItemResult], *, merge: bool = True) -> Path:
    """Write (or update) the baseline at ``path`` with these items' per-example values.

    ``merge=True`` keeps the file's other items, so refreshing one case does not drop the rest.
    """
    path = Path(path)
    kept: dict[str, BaselineItem] = {}
    if merge and path.exists():
        existing = load_baseline(path)
        if existing.source == "baseline":
            kept = dict(existing.items)
    for item in items:
        kept[item.item_id] = _item_from_result(item)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "items": {item_id: asdict(entry) for item_id, entry in sorted(kept.items())},
    }
    write_atomic(path, json.dumps(jsonable(doc), indent=1, ensure_ascii=False) + "\n")
    return path


def _fail(path: Path, message: str) -> BaselineError:
    return BaselineError(
        path, message,
        "regenerate it (run the suite with the baseline-update option) or restore it from version control; "
        "a baseline is written by evalsuite, not by hand",
    )


def _metric(path: Path, where: str, raw: Any) -> BaselineMetric:
    if not isinstance(raw, dict) or not isinstance(raw.get("per_example"), dict):
        raise _fail(path, f"{where}: expected an object with 'per_example' (key -> value)")
    known = {k: raw[k] for k in ("value", "higher_is_better", "interval", "kind", "min", "max", "definition") if k in raw}
    return BaselineMetric(per_example=raw["per_example"], **{"value": None, **known})


def _from_baseline_doc(path: Path, doc: dict[str, Any]) -> Baseline:
    items = doc.get("items")
    if not isinstance(items, dict):
        raise _fail(path, "'items' must be an object mapping item id -> item")
    out: dict[str, BaselineItem] = {}
    for item_id, raw in items.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
            raise _fail(path, f"items.{item_id}: expected an object with 'metrics'")
        metrics = {name: _metric(path, f"items.{item_id}.metrics.{name}", m) for name, m in raw["metrics"].items()}
        out[item_id] = BaselineItem(
            item_id=item_id, metrics=metrics, model=raw.get("model") or {}, params=raw.get("params") or {},
            dataset_fingerprint=raw.get("dataset_fingerprint") or "", n_examples=int(raw.get("n_examples") or 0),
            unparsed=int(raw.get("unparsed") or 0), errors=int(raw.get("errors") or 0),
        )
    return Baseline(path=path, created_at=str(doc.get("created_at", "")), items=out, source="baseline")


def _from_report_doc(path: Path, doc: dict[str, Any]) -> Baseline:
    out: dict[str, BaselineItem] = {}
    for i, raw in enumerate(doc["items"]):
        try:
            item = ItemResult.from_dict(raw)
        except (AttributeError, KeyError, TypeError) as exc:
            problem = str(exc).split("__init__() ")[-1]  # "missing 1 required positional argument: 'nodeid'"
            raise BaselineError(path, f"items[{i}]: missing or malformed field ({problem})",
                                "use a report.json written by evalsuite (schema_version 1)") from None
        out[item.item_id] = _item_from_result(item)
    return Baseline(path=path, created_at=str(doc.get("created_at", "")), items=out, source="report")


def load_baseline(path: Path | str) -> Baseline:
    """Read a baseline file or a ``report.json``; raise ``BaselineError`` naming the file and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(path, "file not found", "check the path, or create a baseline by running the suite "
                            "with the baseline-update option") from None
    except OSError as exc:
        raise BaselineError(path, f"cannot read: {exc.strerror}", "check the path and its permissions") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "expected a JSON object at the top level")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _fail(path, f"schema_version is {version!r}; this evalsuite reads version {SCHEMA_VERSION}")
    if isinstance(doc.get("items"), list):
        return _from_report_doc(path, doc)
    return _from_baseline_doc(path, doc)
