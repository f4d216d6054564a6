"""report.json against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from evalsuite.records import ItemResult
from evalsuite.report import write_reports
from evalsuite.report.json import SCHEMA_PATH


def test_report_json_matches_its_schema(tmp_path: Path, sweep: list[ItemResult]) -> None:
    paths = write_reports(tmp_path, sweep, {"record_mode": "none", "command": "pytest cases"})
    assert set(paths) == {"json", "md", "html"} and all(p.exists() for p in paths.values())
    doc = json.loads(paths["json"].read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(doc)
    assert doc["schema_version"] == 1
    run = doc["run"]
    assert run["record_mode"] == "none" and run["command"] == "pytest cases"
    assert set(run["packages"]) >= {"evalsuite", "openai", "vcrpy", "python"} and run["packages"]["openai"]
    assert run["cost_usd"] == pytest.approx(0.6) and run["tokens"] == {"prompt": 30000, "completion": 600}
    assert doc["summary"]["regressions"] == 1 and doc["summary"]["examples"] == 600
    item = next(i for i in doc["items"] if i["item_id"] == "sentiment[t1.0]")
    assert item["status"] == "regression" and len(item["records"]) == 200
    assert item["metrics"][0]["test"] == "mcnemar-exact" and item["metrics"][0]["n_paired"] == 200


def test_report_items_read_back_as_the_items_written(tmp_path: Path, sweep: list[ItemResult]) -> None:
    doc = json.loads(write_reports(tmp_path, sweep, {})["json"].read_text())
    assert [ItemResult.from_dict(raw) for raw in doc["items"]] == sweep


def test_schema_rejects_a_report_missing_records(tmp_path: Path, sweep: list[ItemResult]) -> None:
    doc = json.loads(write_reports(tmp_path, sweep[:1], {})["json"].read_text())
    del doc["items"][0]["records"]
    with pytest.raises(jsonschema.ValidationError, match="records"):
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))


def test_report_json_holds_the_plain_data_of_every_item_one_record_per_line(annotated: list[ItemResult]) -> None:
    """Written in one orjson pass (25k records took 1.5 s through asdict, a plain-data walk and json.dumps): the
    content is the plain-data document's, values orjson knows differently included, and each record is one line."""
    import datetime

    import numpy as np

    from evalsuite.report.json import render_json, report_document

    record = annotated[0].records[0]
    record.expected, record.prediction = ("a", "b"), {"label": {"positive"}}
    record.scores.update(nan=float("nan"), numpy=np.float64(0.25), count=np.int64(3), when=datetime.date(2026, 1, 2))
    annotated[0].meta["at"] = datetime.datetime(2026, 1, 2, 3, 4, 5)
    text = render_json(annotated, {"record_mode": "none"})
    expected = report_document(annotated, {"record_mode": "none"})
    doc = json.loads(text)
    doc["created_at"] = expected["created_at"]  # written a moment apart
    assert doc == expected
    assert doc["items"][0]["records"][0]["scores"]["when"] == "2026-01-02" and doc["items"][0]["meta"]["at"] == (
        "2026-01-02 03:04:05")
    lines = text.splitlines()
    assert sum(line.lstrip().startswith('{"example_id":') for line in lines) == sum(len(i.records) for i in annotated)


def test_a_value_only_the_plain_data_writer_knows_takes_its_path(annotated: list[ItemResult]) -> None:
    from evalsuite.report.json import render_json, report_document

    annotated[0].records[0].prediction = {1: "a non-text key", "big": 2**70}
    doc = json.loads(render_json(annotated, {}))
    assert doc["items"][0]["records"][0]["prediction"] == {"1": "a non-text key", "big": 2**70}
    assert doc["items"] == report_document(annotated, {})["items"]
