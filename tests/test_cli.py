"""`python -m evalsuite compare OLD NEW` and the baseline files it (and the plugin) read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.verdict.baseline import BaselineError, load_baseline, write_baseline
from evalsuite.records import ItemResult
from evalsuite.report.files import write_reports
from tests.report.test_report import make_item, rejudge

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "evalsuite", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def regressed_copy(seed: int = 1, lost: int = 20) -> ItemResult:
    item = make_item(0.0, accuracy=0.95, seed=seed)
    for r in item.records[:200]:
        if lost and r.scores["accuracy"] == 1:
            r.scores["accuracy"] = 0
            lost -= 1
    return rejudge(item)


@pytest.fixture
def reports(tmp_path: Path) -> dict[str, Path]:
    old = write_reports(tmp_path / "old", [make_item(0.0, accuracy=0.95, seed=1)], {})["json"]
    new = write_reports(tmp_path / "new", [regressed_copy()], {})["json"]
    return {"old": old, "new": new}


def test_compare_exits_1_on_a_regression(reports: dict[str, Path]) -> None:
    result = run_cli("compare", str(reports["old"]), str(reports["new"]))
    assert result.returncode == 1, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("sentiment[t0.0]"))
    assert "accuracy" in row and row.endswith("REGRESSION") and "p<0.001" in row
    assert "20 flipped to 0, 0 flipped to 1" in result.stdout


def test_compare_same_run_exits_0(reports: dict[str, Path]) -> None:
    result = run_cli("compare", str(reports["old"]), str(reports["old"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unchanged" in result.stdout and "REGRESSION" not in result.stdout


def test_compare_improvement_exits_0(reports: dict[str, Path]) -> None:
    result = run_cli("compare", str(reports["new"]), str(reports["old"]))
    assert result.returncode == 0
    assert "improved" in result.stdout


def test_compare_alpha_decides_borderline_changes(tmp_path: Path) -> None:
    old = write_reports(tmp_path / "old", [make_item(0.0, accuracy=0.95, seed=1)], {})["json"]
    new = write_reports(tmp_path / "new", [regressed_copy(lost=5)], {})["json"]  # p = 1/32 one-sided
    assert run_cli("compare", str(old), str(new), "--alpha", "0.05").returncode == 1
    assert run_cli("compare", str(old), str(new), "--alpha", "0.01").returncode == 0


def test_compare_reads_baseline_files_and_reports_items_on_one_side(tmp_path: Path) -> None:
    base = write_baseline(tmp_path / "baseline.json", [make_item(0.0, accuracy=0.95, seed=1),
                                                       make_item(0.5, accuracy=0.9, seed=2)])
    new = write_reports(tmp_path / "new", [regressed_copy(), make_item(1.0, seed=3)], {})["json"]
    result = run_cli("compare", str(base), str(new))
    assert result.returncode == 1
    assert f"sentiment[t1.0]: not in {base}; thresholds only" in result.stdout
    assert f"sentiment[t0.5]: in {base} but not in {new}" in result.stdout


def test_compare_threshold_failure_gates_unless_ignored(tmp_path: Path) -> None:
    old = write_reports(tmp_path / "old", [make_item(0.0, accuracy=0.7, seed=4)], {})["json"]
    assert run_cli("compare", str(old), str(old)).returncode == 1  # 0.7 misses min 0.8 stored in the report
    assert run_cli("compare", str(old), str(old), "--ignore-thresholds").returncode == 0


def test_compare_bad_input_exits_2_with_the_file_and_fix(tmp_path: Path, reports: dict[str, Path]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "items": {"x": ')
    result = run_cli("compare", str(bad), str(reports["new"]))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "not valid JSON (line 1" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("compare", str(tmp_path / "nope.json"), str(reports["new"]))
    assert missing.returncode == 2 and "file not found" in missing.stderr
    assert run_cli("compare", str(reports["old"]), str(reports["new"]), "--alpha", "3").returncode == 2
    assert run_cli().returncode == 2  # no subcommand: usage


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
