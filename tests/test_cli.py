"""The command line: `--version`, `--help`, and `compare OLD NEW` with its exit codes and the files it reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from evalsuite.metrics import MetricInfo
from evalsuite.records import ItemResult
from evalsuite.report import write_reports
from evalsuite.verdict import write_baseline
from tests._support.dist_info import install_package
from tests._support.builders import make_item, rejudge

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT, path) if p)}
    return subprocess.run([sys.executable, "-m", "evalsuite", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def metric_row(stdout: str, metric: str) -> str:
    """The table row of ``metric``: the line that names it and ends with a verdict (however wide the table is)."""
    verdicts = {"pass", "fail", "regression", "improved", "unchanged", "error"}
    return next(line for line in stdout.splitlines() if metric in line.split() and line.split()[-1].lower() in verdicts)


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
    row = metric_row(result.stdout, "accuracy")
    assert row.endswith("REGRESSION") and "p<0.001" in row
    assert "20 flipped to 0, 0 flipped to 1" in " ".join(result.stdout.split())  # the reason wraps at the width


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


def test_version_from_the_module_and_the_installed_script() -> None:
    expected = f"evalsuite {version('evalsuite')}"
    module = run_cli("--version")
    assert (module.returncode, module.stdout.strip()) == (0, expected)
    script = shutil.which("evalsuite", path=os.path.dirname(sys.executable))
    assert script, "the evalsuite console script is not installed beside this Python: pip install -e ."
    installed = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert (installed.returncode, installed.stdout.strip()) == (0, expected)


def test_help_points_to_pytest_and_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "main interface is pytest" in result.stdout and "`pytest cases`" in result.stdout
    for command in ("compare", "judge-check", "schema", "serve-local"):
        assert f"\n    {command} " in result.stdout or f"\n    {command}\n" in result.stdout, command
    assert "on any regression" not in result.stdout  # compare also fails on a missed threshold


def test_compare_help_documents_each_exit_code() -> None:
    text = " ".join(run_cli("compare", "--help").stdout.split())
    assert "0 no regression, and every threshold stored in NEW is met" in text
    assert "1 a metric regressed, missed a min/max threshold stored in NEW" in text
    assert "2 unusable input" in text and "nothing to compare" in text


def test_compare_of_unrelated_runs_exits_2_and_says_why(tmp_path: Path) -> None:
    old = write_reports(tmp_path / "old", [make_item(0.0, seed=1)], {})["json"]
    new = write_reports(tmp_path / "new", [make_item(0.5, seed=2)], {})["json"]  # no item id in common
    result = run_cli("compare", str(old), str(new))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"nothing was compared: no metric of {new} has an example paired with {old}" in result.stderr
    assert "Fix: compare two runs of the same case files" in result.stderr and "Traceback" not in result.stderr
    assert f"sentiment[t0.5]: not in {old}; thresholds only" in result.stdout  # the notes say which side has what


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


EXTENSION = """
import statistics

from evalsuite.metrics import Metric


class MedianScore(Metric):
    \"\"\"A corpus metric: the median of the per-example scores (compare never scores, it re-aggregates).\"\"\"

    kind = "corpus"

    def aggregate(self, values):
        return float(statistics.median(v for v in values if v is not None))

    def describe(self):
        return "median of the per-example scores"
"""


def _with_median(item: ItemResult, shift: float) -> ItemResult:
    """The item with a corpus metric "median_score" (the median of its similarity values, shifted)."""
    from evalsuite.cases.schema import MetricSpec
    from evalsuite.verdict import judge

    median = MetricInfo("median_score", "corpus", True, "median of the per-example scores",
                        lambda values: float(np.median(values)))
    for r in item.records:
        r.scores["median_score"] = r.scores["similarity"] + shift
    keys = [str(r.key) for r in item.records]
    item.metrics.append(judge(median, MetricSpec(), [r.scores["median_score"] for r in item.records], keys))
    return item


def test_compare_finds_an_entry_point_metric(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_package(site, "evalsuite-median", {"evalsuite.metrics": {"median_score": "median_metric:MedianScore"}},
                    {"median_metric": EXTENSION})
    old = write_reports(tmp_path / "old", [_with_median(make_item(0.0, seed=1), 0.0)], {})["json"]
    new = write_reports(tmp_path / "new", [_with_median(make_item(0.0, seed=1), -0.2)], {})["json"]

    found = run_cli("compare", str(old), str(new), path=site)
    assert found.returncode == 1, found.stdout + found.stderr
    row = metric_row(found.stdout, "median_score")
    assert row.endswith("REGRESSION") and "-0.200 p<0.001" in row
    # Without the installed package the median cannot be recomputed from the stored values: skipped, not guessed.
    unknown = run_cli("compare", str(old), str(new))
    assert "median_score skipped: cannot recompute this corpus metric" in unknown.stdout
