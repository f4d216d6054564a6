"""Verdict step 2: thresholds, and the note when the interval cannot tell."""

from __future__ import annotations

from evalsuite.cases.schema import MetricSpec
from evalsuite.verdict._interval import Interval
from evalsuite.verdict._thresholds import thresholds


def measured(value: float, low: float | None = None, high: float | None = None) -> Interval:
    return Interval(value, 100, low, high, "wilson", "mean", 0.95, " on n=100")


def test_no_threshold_no_clause() -> None:
    check = thresholds(measured(0.5), MetricSpec())
    assert not check.failed and check.text == ""


def test_met_and_missed_bounds_are_named() -> None:
    assert thresholds(measured(0.9, 0.85, 0.94), MetricSpec(min=0.8)).text == "meets min 0.800"
    both = thresholds(measured(0.9, 0.85, 0.94), MetricSpec(min=0.8, max=0.95))
    assert both.text == "meets min 0.800 and max 0.950" and not both.failed
    missed = thresholds(measured(0.7, 0.6, 0.75), MetricSpec(min=0.8))
    assert missed.failed and missed.missed == ("below min 0.800",)
    assert missed.text == "FAILS threshold: below min 0.800"


def test_an_interval_containing_the_bound_says_so() -> None:
    check = thresholds(measured(0.6, 0.45, 0.75), MetricSpec(max=0.5))
    assert check.missed == ("above max 0.500",)
    assert check.text.endswith("(the 95% CI contains 0.500: too few examples to be sure)")
