"""Verdict step 3: the paired comparison against the baseline, as a value of its own."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import MetricInfo
from evalsuite.verdict._compare import Comparison, Pairing, compare
from evalsuite.verdict._interval import Interval, interval
from evalsuite.verdict.stats import Resampling
from tests._support.builders import mean_metric


def run(values: list[float], keys: list[str], baseline: dict[str, float], spec: MetricSpec = MetricSpec(),
        kind: str = "proportion") -> Comparison:
    info = mean_metric(kind=kind)  # type: ignore[arg-type]
    measured = interval(info, values, keys, Resampling())
    assert isinstance(measured, Interval)
    return compare(info, spec, measured, values, keys, baseline, alpha=0.05, resampling=Resampling())


def test_flips_are_counted_and_tested_with_mcnemar() -> None:
    keys = [f"ex{i}#0" for i in range(100)]
    old = [1.0] * 100
    new = [0.0] * 10 + [1.0] * 90
    result = run(new, keys, dict(zip(keys, old)))
    assert result.status == "regression" and result.test == "mcnemar-exact"
    assert result.pairing == Pairing(100, 0, 0)
    assert result.baseline == 1.0 and result.delta == pytest.approx(-0.1)
    assert result.fields() == {"baseline": 1.0, "delta": result.delta, "p_value": result.p_value,
                               "p_improvement": 1.0, "p_method": "exact", "p_mc_se": None,
                               "test": "mcnemar-exact", "n_paired": 100, "n_new": 0, "n_missing": 0}


def test_max_drop_tolerates_a_significant_drop() -> None:
    keys = [f"ex{i}#0" for i in range(100)]
    result = run([0.0] * 10 + [1.0] * 90, keys, {k: 1.0 for k in keys}, MetricSpec(max_drop=0.2))
    assert result.status == "unchanged" and "within max_drop 0.200" in result.text


def test_nothing_paired_gives_no_status_and_counts_both_sides() -> None:
    result = run([1.0, 0.0], ["a#0", "b#0"], {"c#0": 1.0})
    assert result.status is None and result.delta is None and result.test == ""
    assert result.pairing == Pairing(0, 2, 1)
    assert result.text.startswith("no baseline comparison: no example key matches the baseline; not compared: "
                                  "2 example(s) new since the baseline, 1 baseline example(s) missing now")


def test_repeats_pair_examples_not_samples() -> None:
    keys = [f"ex{i}#{s}" for i in range(10) for s in range(3)]
    rng = np.random.default_rng(0)
    old = rng.integers(0, 2, 30).astype(float)
    new = old.reshape(10, 3)[:, ::-1].ravel()  # the same samples in another order: same per-example means
    result = run(new.tolist(), keys, dict(zip(keys, old.tolist())))
    assert result.status == "unchanged" and result.test == "paired-permutation"
    assert result.pairing.n_paired == 10 and result.delta == pytest.approx(0.0)


def _latency_run(before: list[float], after: list[float], spec: MetricSpec = MetricSpec()) -> Comparison:
    info = MetricInfo("latency_p50", "corpus", False, "median latency", lambda v: float(np.median(v)), None, False)
    keys = [f"ex{i}#0" for i in range(len(after))]
    measured = interval(info, after, keys, Resampling())
    assert isinstance(measured, Interval)
    return compare(info, spec, measured, after, keys, dict(zip(keys, before)), alpha=0.05, resampling=Resampling())


def test_a_significant_change_of_an_ungated_metric_is_said_without_failing() -> None:
    before = [0.045 + i / 10000 for i in range(8)]
    slower = _latency_run(before, [0.429 + i / 10000 for i in range(8)])  # every example slower: p = 2^-8
    assert slower.status == "unchanged" and slower.p_value == pytest.approx(2 ** -8)
    assert slower.text.endswith(") - an increase, significant at alpha 0.05, but not gated: it measures the machine "
                                "more than the model; set max_increase to gate it")
    noise = _latency_run(before, before[1:] + before[:1])  # a reshuffle, not a change
    assert noise.status == "unchanged" and "not significant at alpha 0.05, and not gated" in noise.text
    gated = _latency_run(before, [0.429 + i / 10000 for i in range(8)], MetricSpec(max_increase=0.1))
    assert gated.status == "regression"
