"""Settings that validate but cannot mean what they say: an error at the key's line, or a warning when the
setting can be meant."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from evalsuite.errors import CaseFileWarning
from tests._support.case_files import CASE, error, load

LABELS = "{kind: label, labels: {positive: [positive, good], negative: [negative, bad]}}"
LABELLED = CASE.replace("    metrics:", f"    parse: {LABELS}\n    metrics:")  # metrics on line 8


def with_metrics(metrics: str, case: str = LABELLED) -> str:
    return case.replace("metrics: [accuracy]", f"metrics:\n      {metrics}")  # the metric on line 9


def case_warnings(root: Path, text: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(root, text)
    return [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if issubclass(w.category, CaseFileWarning)]


@pytest.mark.parametrize("metrics,expected", [
    ("accuracy: {min: 80}", "metrics.accuracy.min: 80 is outside 0..1, the values accuracy takes (a proportion); "
                            "did you mean 0.8? write the threshold on that scale"),
    ("accuracy: 80", "metrics.accuracy.min: 80 is outside 0..1"),
    ("f1: {average: macro, max: 95}", "metrics.f1.max: 95 is outside 0..1, the values f1 takes (its scale); did you "
                                      "mean 0.95?"),
    ("accuracy: {max_drop: 5}", "metrics.accuracy.max_drop: 5 is outside 0..1, the values accuracy can drop by"),
    ("accuracy: {min: 0.9, max: 0.5}", "metrics.accuracy.max: below min (0.5 < 0.9), so no value can pass; swap "
                                       "them, or drop one"),
], ids=["proportion-percent", "shorthand", "bounded-corpus-metric", "max-drop", "min-above-max"])
def test_a_threshold_no_value_can_meet_fails_at_its_line(tmp_path: Path, metrics: str, expected: str) -> None:
    assert error(tmp_path, with_metrics(metrics)).startswith(f"cases/x.yaml:9: {expected}")


def test_thresholds_on_a_0_to_100_scale_and_unbounded_metrics_are_left_alone(tmp_path: Path) -> None:
    runs = load(tmp_path, with_metrics("chrf: {min: 40}\n      latency_p95: {max: 2000}"))
    assert runs[0].case.metrics["chrf"].min == 40


def test_a_metric_comparing_with_expected_needs_the_expected_column(tmp_path: Path) -> None:
    text = LABELLED.replace("examples: [{text: good, expected: positive}]}",
                            "examples: [{text: good}],\n      expected: null}")
    assert error(tmp_path, text) == (
        "cases/x.yaml:6: dataset.expected: null, but accuracy compares each answer with the expected value; set "
        "dataset.expected to the reference column, or drop the metric"
    )
    assert load(tmp_path, with_metrics("contains: {}", LABELLED).replace("expected: positive", "expected: good"))


def test_a_label_name_the_parser_cannot_produce_fails_at_label_names(tmp_path: Path) -> None:
    text = LABELLED.replace("examples: [{text: good, expected: positive}]}",
                            "examples: [{text: good, expected: 1}],\n      label_names: [negative, postive]}")
    assert error(tmp_path, text) == (
        "cases/x.yaml:6: dataset.label_names: a stored label is named 'postive', which is not one of parse.labels "
        "(positive, negative): the parser never produces it, so those examples always count as wrong; did you mean "
        "'positive'? labels: positive, negative; fix the label, or add it to parse.labels"
    )


def test_a_label_metric_without_a_parse_section_warns_at_the_metric(tmp_path: Path) -> None:
    assert case_warnings(tmp_path, with_metrics("accuracy: {min: 0.5}", CASE)) == [
        "cases/x.yaml:8: metrics.accuracy: accuracy compares parsed labels, but the case has no parse: section, so "
        "each whole answer (stripped) is its prediction; add parse: {kind: label, labels: {...}} (or kind: regex / "
        "json), or write parse: {kind: raw} if the answers are exactly the labels"
    ]
    assert case_warnings(tmp_path, CASE.replace("    metrics:", "    parse: {kind: raw}\n    metrics:")) == []
    assert case_warnings(tmp_path, LABELLED) == []


def test_repeats_at_temperature_0_warn_once_per_greedy_item(tmp_path: Path) -> None:
    text = LABELLED.replace("    metrics:", "    repeats: 5\n    variants: {matrix: {temperature: [0, 0.7]}}\n"
                            "    metrics:").replace("model: {name: m, temperature: 0}", "model: {name: m}")
    assert case_warnings(tmp_path, text) == [
        "cases/x.yaml:8: repeats: 5 samples at temperature 0 (sentiment[t0]): greedy decoding gives the same answer "
        "each time, so the extra samples cost calls and measure nothing; set repeats: 1, or a sampling temperature "
        "(unless this endpoint is nondeterministic at temperature 0)"
    ]
