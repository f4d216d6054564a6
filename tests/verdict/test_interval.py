"""Verdict step 1: the value and its interval, chosen by the values' shape."""

from __future__ import annotations

import pytest

from evalsuite.metrics import MetricInfo
from evalsuite.verdict._interval import Interval, Undefined, interval
from evalsuite.verdict.stats import Resampling, wilson
from tests._support.builders import mean_metric


def keys(n: int, samples: int = 1) -> list[str]:
    return [f"ex{i}#{s}" for i in range(n) for s in range(samples)]


def test_zero_one_values_get_the_wilson_interval() -> None:
    measured = interval(mean_metric(), [1] * 8 + [0] * 2, keys(10), Resampling())
    assert isinstance(measured, Interval)
    assert (measured.value, measured.n, measured.method, measured.aggregate) == (0.8, 10, "wilson", "mean")
    assert (measured.low, measured.high) == wilson(8, 10)
    assert measured.text("accuracy") == "accuracy = 0.800 (95% CI 0.490-0.943, wilson) on n=10"


def test_mean_values_are_bootstrapped_and_none_is_not_measured() -> None:
    measured = interval(mean_metric("rougeL", "mean"), [0.2, None, 0.4, 0.6], keys(4), Resampling())
    assert isinstance(measured, Interval)
    assert measured.n == 3 and measured.value == pytest.approx(0.4) and measured.method == "bootstrap"
    assert measured.low is not None and measured.high is not None and measured.low <= 0.4 <= measured.high


def test_an_aggregate_other_than_the_mean_is_resampled_itself() -> None:
    median = MetricInfo("median", "mean", True, "", lambda values: sorted(values)[len(values) // 2])
    measured = interval(median, [0.1, 0.2, 0.9], keys(3), Resampling())
    assert isinstance(measured, Interval) and measured.aggregate is median.aggregate


def test_repeats_are_a_cluster_bootstrap_over_examples() -> None:
    measured = interval(mean_metric(), [1, 1, 0, 0, 1, 0], keys(2, 3), Resampling())
    assert isinstance(measured, Interval) and measured.repeats
    assert measured.shape == " on n=6 (2 examples x 3 samples)"


def test_nothing_measured_or_an_undefined_aggregate_is_undefined() -> None:
    assert interval(mean_metric("latency", "mean"), [None, None], keys(2), Resampling()) == Undefined(
        0, "latency: no example produced a value (all calls failed or were skipped)")
    nan = MetricInfo("ratio", "mean", True, "", lambda values: float("nan"))
    undefined = interval(nan, [1.0, 2.0], keys(2), Resampling())
    assert isinstance(undefined, Undefined) and undefined.n == 2 and "aggregate is undefined (nan)" in undefined.reason
