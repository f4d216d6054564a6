"""The committed baseline: round trip, merge, report.json as a baseline, and errors that name the file and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.report import write_reports
from evalsuite.verdict import BaselineError, load_baseline, write_baseline
from tests._support.builders import make_item


def test_baseline_round_trip_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "evals" / "baseline.json"
    a, b = make_item(0.0, seed=1), make_item(0.5, seed=2)
    write_baseline(path, [a, b])
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and set(doc["items"]) == {"sentiment[t0.0]", "sentiment[t0.5]"}
    entry = doc["items"]["sentiment[t0.0]"]
    assert entry["model"]["name"] == "gpt-4o-mini" and entry["params"] == {"temperature": 0.0}
    assert entry["dataset_fingerprint"] == "0123456789abcdef"
    assert entry["metrics"]["accuracy"]["value"] == a.metrics[0].value

    refreshed = make_item(0.0, accuracy=0.5, seed=9)
    write_baseline(path, [refreshed])  # merge: t0.5 is kept, t0.0 replaced
    baseline = load_baseline(path)
    assert set(baseline.items) == {"sentiment[t0.0]", "sentiment[t0.5]"}
    values = baseline.item("sentiment[t0.0]")
    assert values["accuracy"] == {f"{r.example_id}#0": r.scores["accuracy"] for r in refreshed.records}
    assert baseline.item("unknown") is None
    assert [p.name for p in path.parent.iterdir()] == ["baseline.json"]  # no temp files left behind


def test_report_json_serves_as_a_baseline(tmp_path: Path) -> None:
    item = make_item(0.0, seed=1)
    baseline = load_baseline(write_reports(tmp_path, [item], {})["json"])
    assert baseline.source == "report"
    assert baseline.item(item.item_id)["similarity"]["ex5#0"] == item.records[5].scores["similarity"]


@pytest.mark.parametrize("content,message", [
    ("[]", "expected a JSON object"),
    ('{"schema_version": 7, "items": {}}', "schema_version is 7"),
    ('{"schema_version": 1, "items": {"a": {"metrics": {"acc": {"value": 1}}}}}', "items.a.metrics.acc"),
    ('{"schema_version": 1, "items": [{"item_id": "a"}]}', "items[0]"),
])
def test_malformed_baseline_names_file_and_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and message in str(info.value) and "Fix:" in str(info.value)


def test_report_json_and_baseline_file_read_back_the_same(tmp_path: Path) -> None:
    items = [make_item(0.0, seed=1), make_item(0.5, seed=2)]
    from_report = load_baseline(write_reports(tmp_path, items, {})["json"])
    from_baseline = load_baseline(write_baseline(tmp_path / "baseline.json", items))
    assert (from_report.source, from_baseline.source) == ("report", "baseline")
    assert from_report.items == from_baseline.items
