"""Verdict step 3: the paired comparison against the baseline, as a value of its own."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
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
