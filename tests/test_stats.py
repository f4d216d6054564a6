"""The statistics agree with scipy on known tables and are reproducible under a seed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import binomtest

from evalsuite.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap, wilson


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (45, 100), (850, 1000), (1, 3), (21000, 25000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    for confidence in (0.9, 0.95, 0.99):
        expected = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        lo, hi = wilson(k, n, confidence)
        assert lo == pytest.approx(expected.low, abs=1e-12)
        assert hi == pytest.approx(expected.high, abs=1e-12)


def test_wilson_rejects_empty_sample() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_mcnemar_classic_table() -> None:
    # Agresti's presidential approval table: 794/150/86/570 -> discordant b=150, c=86; exact p = 3.8e-05.
    p = mcnemar_exact(150, 86)
    assert p == pytest.approx(binomtest(150, 236, 0.5).pvalue, rel=1e-12)
    assert p == pytest.approx(3.8e-05, rel=0.05)


@pytest.mark.parametrize("b,c", [(12, 3), (3, 12), (5, 5), (0, 7), (40, 25), (1, 0)])
def test_mcnemar_two_sided_and_one_sided_match_scipy(b: int, c: int) -> None:
    n = b + c
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, n, 0.5).pvalue, rel=1e-12)
    assert mcnemar_exact(b, c, alternative="worse") == pytest.approx(
        binomtest(b, n, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert mcnemar_exact(b, c, alternative="better") == pytest.approx(
        binomtest(b, n, 0.5, alternative="less").pvalue, rel=1e-12)


def test_mcnemar_no_discordant_pairs_is_no_evidence() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 0, alternative="worse") == 1.0


def test_bootstrap_is_seeded_and_covers_the_mean() -> None:
    values = np.random.default_rng(3).normal(0.6, 0.2, 2000)
    a = bootstrap_ci(values, seed=7)
    assert a == bootstrap_ci(values, seed=7)
    assert a != bootstrap_ci(values, seed=8)
    assert a[0] < values.mean() < a[1]
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_generic_aggregate_matches_vectorised_mean() -> None:
    values = list(np.random.default_rng(4).random(300))
    fast = bootstrap_ci(values, "mean", seed=1, n_resamples=500)
    slow = bootstrap_ci(values, lambda v: float(np.mean(v)), seed=1, n_resamples=500)
    assert fast == pytest.approx(slow, abs=1e-12)  # same seed -> same resamples on both paths


def test_bootstrap_mean_is_fast_at_25k() -> None:
    values = np.random.default_rng(5).random(25_000)
    start = time.perf_counter()
    bootstrap_ci(values, seed=0, n_resamples=2000)
    assert time.perf_counter() - start < 5.0


def test_paired_bootstrap_detects_a_consistent_drop_and_is_reproducible() -> None:
    rng = np.random.default_rng(6)
    old = rng.random(1000)
    new = old - 0.02 + rng.normal(0, 0.05, 1000)
    result = paired_bootstrap(old, new, seed=2)
    assert result == paired_bootstrap(old, new, seed=2)
    assert result.delta == pytest.approx(new.mean() - old.mean())
    assert result.p_lower < 0.01 and result.p_higher > 0.99
    assert result.ci_low < result.delta < result.ci_high < 0


def test_paired_bootstrap_no_change_is_not_significant() -> None:
    rng = np.random.default_rng(7)
    old = rng.random(500)
    new = rng.permutation(old)  # same distribution, pairs shuffled
    result = paired_bootstrap(old, new, seed=0)
    assert result.delta == pytest.approx(0.0, abs=1e-12)
    assert result.p_lower > 0.4 and result.p_higher > 0.4


def test_paired_bootstrap_generic_aggregate() -> None:
    old = [1, 2, 3, 4, 5] * 20
    new = [v + 1 for v in old]
    result = paired_bootstrap(old, new, lambda v: float(np.median(v)), seed=0, n_resamples=200)
    assert result.delta == 1.0
    assert result.p_higher < 0.01


def test_paired_bootstrap_requires_aligned_inputs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_batched_aggregate_gives_the_same_numbers_as_per_resample_calls() -> None:
    values = list(np.random.default_rng(8).random(400))

    def median(v):
        return float(np.median(v))

    def batched(column, idx):
        return np.median(np.asarray(column)[idx], axis=1)

    assert bootstrap_ci(values, median, seed=3, n_resamples=300) == pytest.approx(
        bootstrap_ci(values, median, seed=3, n_resamples=300, batched=batched), abs=1e-12)
    old, new = values, [v * 0.9 for v in values]
    slow = paired_bootstrap(old, new, median, seed=3, n_resamples=300)
    fast = paired_bootstrap(old, new, median, seed=3, n_resamples=300, batched=batched)
    assert (slow.delta, slow.p_lower, slow.ci_low) == pytest.approx((fast.delta, fast.p_lower, fast.ci_low), abs=1e-12)
