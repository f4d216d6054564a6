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
