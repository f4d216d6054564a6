"""Re-judging stored runs: which metric a stored one is rebuilt as, and the exit code of the result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evalsuite.records import MetricResult
from evalsuite.report import write_reports
from evalsuite.verdict import write_baseline
from evalsuite.verdict.baseline import BaselineMetric
from evalsuite.verdict.compare_runs import FAILED, PASSED, UNUSABLE, compare, exit_code, stored_metric
from tests._support.builders import baseline_of, make_item


def test_a_registered_metric_is_rebuilt_with_its_vectorised_aggregate() -> None:
    per_example = {f"e{i}#0": [label, label] for i, label in enumerate(["pos", "neg"] * 5)}
    f1 = stored_metric("f1", BaselineMetric(value=1.0, per_example=per_example, kind="corpus"))
    assert f1 is not None and f1.kind == "corpus"
    assert f1.aggregate_resamples is not None  # the same fast path, and numbers, as the test session


def test_the_stored_kind_and_direction_win_over_the_registry_defaults() -> None:
    stored = BaselineMetric(value=0.5, per_example={"a#0": 1, "b#0": 0}, kind="proportion", higher_is_better=False,
                            definition="share refused")
    info = stored_metric("accuracy", stored)
    assert info is not None and (info.kind, info.higher_is_better, info.definition) == (
        "proportion", False, "share refused")


def test_an_unregistered_numeric_metric_is_the_mean_and_a_corpus_one_is_skipped() -> None:
    mean = stored_metric("similarity", BaselineMetric(value=0.5, per_example={"a#0": 0.25, "b#0": 0.75}))
    assert mean is not None and mean.kind == "mean" and mean.aggregate([0.25, 0.75]) == 0.5
    wilson = stored_metric("judged", BaselineMetric(value=0.5, per_example={"a#0": 1, "b#0": 0}, interval="wilson"))
    assert wilson is not None and wilson.kind == "proportion"
    assert stored_metric("median", BaselineMetric(value=0.9, per_example={"a#0": 0.25, "b#0": 0.75})) is None
    assert stored_metric("pairs", BaselineMetric(value=0.5, per_example={"a#0": ["x", "y"]}, kind="corpus")) is None


def test_the_exit_code_fails_on_any_failed_metric_and_refuses_a_comparison_of_nothing() -> None:
    old = make_item(0.0, seed=1)
    same = make_item(0.0, seed=1, baseline=baseline_of(old))
    assert exit_code([same]) == PASSED
    assert exit_code([make_item(0.0, accuracy=0.7, seed=4, baseline=baseline_of(old))]) == FAILED  # misses min 0.8
    unmeasured = MetricResult(name="judged", value=None, n=0, verdict="error", reason="no answer could be judged")
    assert exit_code([replace(same, metrics=[*same.metrics, unmeasured])]) == FAILED
    assert exit_code([old]) == UNUSABLE  # judged on thresholds only: nothing was paired with the old run
    assert exit_code([]) == UNUSABLE


def test_compare_pairs_items_by_identity_and_reads_reports(tmp_path: Path) -> None:
    # Two suites with the same case id: each is compared with its own old run, not with the other suite's.
    good, poor = make_item(0.0, accuracy=0.95, seed=1), make_item(0.0, accuracy=0.85, seed=2)
    suites = [replace(good, suite="reviews"), replace(poor, suite="tweets")]
    old = write_baseline(tmp_path / "old.json", suites)
    new = write_reports(tmp_path / "reports", suites, {})["json"]
    results, notes = compare(str(old), str(new), alpha=0.05, seed=0)
    assert notes == [] and [r.identity for r in results] == ["reviews::sentiment[t0.0]", "tweets::sentiment[t0.0]"]
    assert {m.verdict for r in results for m in r.metrics} == {"unchanged"}


def test_an_item_the_new_run_could_not_run_fails_the_comparison(tmp_path: Path) -> None:
    """A prompt changed without re-recording: red in its session, so red in ``compare`` too, never "not in NEW"."""
    kept, changed = make_item(0.0, accuracy=0.9, seed=1), make_item(0.7, accuracy=0.9, seed=2)
    old = write_baseline(tmp_path / "old.json", [kept, changed])
    not_recorded = replace(changed, metrics=[], records=[], outcome="not_recorded", passed=False,
                           message="sentiment[t0.7]: 8 call(s) not recorded")
    new = write_reports(tmp_path / "reports", [kept, not_recorded], {})["json"]
    results, notes = compare(str(old), str(new), alpha=0.05, seed=0)
    assert [(r.item_id, r.outcome) for r in results] == [("sentiment[t0.0]", "passed"),
                                                        ("sentiment[t0.7]", "not_recorded")]
    assert notes == [] and exit_code(results) == FAILED
