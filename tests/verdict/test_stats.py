"""The statistics agree with scipy on known tables and are reproducible under a seed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binomtest

from evalsuite.verdict.stats import (Resampling, bootstrap_ci, mcnemar_exact, paired_bootstrap, paired_permutation,
                                     wilson)


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
    a = bootstrap_ci(values, "mean", Resampling(seed=7))
    assert a == bootstrap_ci(values, "mean", Resampling(seed=7))
    assert a != bootstrap_ci(values, "mean", Resampling(seed=8))
    assert a[0] < values.mean() < a[1]
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_generic_aggregate_matches_vectorised_mean() -> None:
    values = list(np.random.default_rng(4).random(300))
    fast = bootstrap_ci(values, "mean", Resampling(seed=1, n_resamples=500))
    slow = bootstrap_ci(values, lambda v: float(np.mean(v)), Resampling(seed=1, n_resamples=500))
    assert fast == pytest.approx(slow, abs=1e-12)  # same seed -> same resamples on both paths


def test_bootstrap_mean_at_25k_brackets_the_mean() -> None:
    values = np.random.default_rng(5).random(25_000)
    lo, hi = bootstrap_ci(values, "mean", Resampling(seed=0, n_resamples=2000))
    assert lo < values.mean() < hi and hi - lo < 0.01


def test_paired_bootstrap_detects_a_consistent_drop_and_is_reproducible() -> None:
    rng = np.random.default_rng(6)
    old = rng.random(1000)
    new = old - 0.02 + rng.normal(0, 0.05, 1000)
    result = paired_bootstrap(old, new, "mean", Resampling(seed=2))
    assert result == paired_bootstrap(old, new, "mean", Resampling(seed=2))
    assert result.delta == pytest.approx(new.mean() - old.mean())
    assert result.p_lower < 0.01 and result.p_higher > 0.99
    assert result.ci_low < result.delta < result.ci_high < 0


def test_paired_bootstrap_no_change_is_not_significant() -> None:
    rng = np.random.default_rng(7)
    old = rng.random(500)
    new = rng.permutation(old)  # same distribution, pairs shuffled
    result = paired_bootstrap(old, new, "mean", Resampling(seed=0))
    assert result.delta == pytest.approx(0.0, abs=1e-12)
    assert result.p_lower > 0.4 and result.p_higher > 0.4


def test_paired_bootstrap_generic_aggregate() -> None:
    old = [1, 2, 3, 4, 5] * 20
    new = [v + 1 for v in old]
    result = paired_bootstrap(old, new, lambda v: float(np.median(v)), Resampling(seed=0, n_resamples=200))
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

    assert bootstrap_ci(values, median, Resampling(seed=3, n_resamples=300)) == pytest.approx(
        bootstrap_ci(values, median, Resampling(seed=3, n_resamples=300, batched=batched)), abs=1e-12)
    old, new = values, [v * 0.9 for v in values]
    slow = paired_bootstrap(old, new, median, Resampling(seed=3, n_resamples=300))
    fast = paired_bootstrap(old, new, median, Resampling(seed=3, n_resamples=300, batched=batched))
    assert (slow.delta, slow.p_lower, slow.ci_low) == pytest.approx((fast.delta, fast.p_lower, fast.ci_low), abs=1e-12)


def _median(values) -> float:
    return float(np.median(values))


def _median_batched(values, idx) -> np.ndarray:
    return np.median(np.asarray(values, dtype=float)[idx], axis=1)


def _exact_randomization_p(old, new, aggregate) -> tuple[float, float]:
    """Exact one-sided p-values: the statistic over all 2^n ways of swapping old/new within pairs."""
    observed = aggregate(new) - aggregate(old)
    stats = []
    for keep in itertools.product((True, False), repeat=len(old)):
        new_r = [b if k else a for a, b, k in zip(old, new, keep)]
        old_r = [a if k else b for a, b, k in zip(old, new, keep)]
        stats.append(aggregate(new_r) - aggregate(old_r))
    stats = np.array(stats)
    tol = 1e-9
    return float(np.mean(stats <= observed + tol)), float(np.mean(stats >= observed - tol))


@pytest.mark.parametrize("aggregate,batched", [("mean", None), (_median, _median_batched), (_median, None)],
                         ids=["mean", "median-batched", "median-generic"])
def test_permutation_matches_exact_enumeration(aggregate, batched) -> None:
    old = [0.31, 0.72, 0.55, 0.90, 0.12, 0.64]
    new = [0.20, 0.70, 0.41, 0.93, 0.05, 0.50]  # mostly lower, not all
    exact_fn = (lambda v: float(np.mean(v))) if aggregate == "mean" else aggregate
    exact_lower, exact_higher = _exact_randomization_p(old, new, exact_fn)
    assert 0.02 < exact_lower < 0.3  # a case where a Monte Carlo estimate would have something to get right
    test = paired_permutation(old, new, aggregate, Resampling(seed=1, n_resamples=2000, batched=batched))
    assert test.method == "exact" and test.rounds == 0  # 2^6 arrangements: enumerated, not sampled
    assert (test.p_lower, test.p_higher) == pytest.approx((exact_lower, exact_higher), abs=1e-12)
    assert test.se(test.p_lower) == 0.0


def test_monte_carlo_p_when_too_many_examples_differ_has_a_standard_error() -> None:
    rng = np.random.default_rng(3)
    old = rng.random(40)
    new = old - 0.02 + rng.normal(0, 0.1, 40)
    test = paired_permutation(old, new, "mean", Resampling(seed=0, n_resamples=2000))
    assert test.method == "monte-carlo" and test.rounds == 2000
    assert test.se(test.p_lower) == pytest.approx(np.sqrt(test.p_lower * (1 - test.p_lower) / 2000))
    assert 0.0 < test.se(test.p_lower) < 0.012


def test_equal_sized_differences_are_counted_exactly_at_any_n() -> None:
    # 0/1 values: the sign-flip test of the mean is McNemar's exact test, whatever the number of flips.
    old = [1.0] * 70 + [0.0] * 30
    new = [0.0] * 12 + [1.0] * 58 + [1.0] * 3 + [0.0] * 27  # 12 losses, 3 gains
    test = paired_permutation(old, new, "mean", Resampling(seed=0))
    assert test.method == "exact"
    assert test.p_lower == pytest.approx(mcnemar_exact(12, 3, alternative="worse"), rel=1e-12)
    assert test.p_higher == pytest.approx(mcnemar_exact(12, 3, alternative="better"), rel=1e-12)
    assert paired_permutation(old, old, "mean") == paired_permutation(old, old, _median)  # nothing differs: p = 1
    assert paired_permutation(old, old, "mean").p_lower == 1.0


def test_permutation_all_one_direction_at_n8_is_one_in_sixteen() -> None:
    # 4 of 8 examples flip right -> wrong, none the other way: no paired test can honestly go below
    # 1/16 (the exact McNemar p), however consistent the direction; the shifted bootstrap said p < 0.001.
    old, new = [1.0] * 8, [0.0] * 4 + [1.0] * 4
    test = paired_permutation(old, new, "mean", Resampling(seed=0, n_resamples=20_000))
    assert mcnemar_exact(4, 0, alternative="worse") == 0.0625
    assert (test.p_lower, test.p_higher, test.method) == (1 / 16, 1.0, "exact")
    assert paired_bootstrap(old, new, "mean", Resampling(seed=0)).p_lower < 0.01  # the anti-conservative p it replaces


def test_permutation_batched_path_equals_generic_path() -> None:
    rng = np.random.default_rng(9)
    old = list(rng.random(60))
    new = [v - 0.05 + rng.normal(0, 0.1) for v in old]
    generic = paired_permutation(old, new, _median, Resampling(seed=4, n_resamples=500))
    batched = paired_permutation(old, new, _median, Resampling(seed=4, n_resamples=500, batched=_median_batched))
    assert generic == batched  # same seed -> same swaps on both paths
    vectorised_mean = paired_permutation(old, new, "mean", Resampling(seed=4, n_resamples=500))
    assert vectorised_mean == paired_permutation(old, new, lambda v: float(np.mean(v)),
                                                 Resampling(seed=4, n_resamples=500))
    assert generic != paired_permutation(old, new, _median, Resampling(seed=5, n_resamples=500))


def test_permutation_detects_a_drop_and_not_a_reshuffle() -> None:
    rng = np.random.default_rng(10)
    old = rng.random(1000)
    drop = paired_permutation(old, old - 0.02 + rng.normal(0, 0.05, 1000), "mean", Resampling(seed=0))
    assert drop.p_lower == pytest.approx(1 / 2001) and drop.p_higher > 0.99
    reshuffle = paired_permutation(old, rng.permutation(old), "mean", Resampling(seed=0))
    assert reshuffle.p_lower > 0.2 and reshuffle.p_higher > 0.2


def test_permutation_mean_at_25k_gives_valid_p_values() -> None:
    rng = np.random.default_rng(11)
    old = rng.random(25_000)
    new = old + rng.normal(0, 0.1, 25_000)
    test = paired_permutation(old, new, "mean", Resampling(seed=0, n_resamples=2000))
    assert 0 < test.p_lower <= 1 and 0 < test.p_higher <= 1 and test.p_lower + test.p_higher >= 1


def test_permutation_requires_aligned_inputs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_permutation([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one pair"):
        paired_permutation([], [])


def test_cluster_bootstrap_of_singletons_is_the_plain_bootstrap() -> None:
    values = list(np.random.default_rng(12).random(200))
    singletons = [f"e{i}" for i in range(200)]
    assert bootstrap_ci(values, "mean", Resampling(seed=3, groups=singletons)) == pytest.approx(
        bootstrap_ci(values, "mean", Resampling(seed=3)), abs=1e-12)
    assert bootstrap_ci(values, _median, Resampling(seed=3, n_resamples=300, groups=singletons)) == pytest.approx(
        bootstrap_ci(values, _median, Resampling(seed=3, n_resamples=300)), abs=1e-12)


def test_cluster_bootstrap_paths_agree_and_are_seeded() -> None:
    rng = np.random.default_rng(13)
    level = rng.random(40)
    values = list(np.repeat(level, 5) + rng.normal(0, 0.05, 200))
    groups = np.repeat(np.arange(40), 5).tolist()
    fast = bootstrap_ci(values, "mean", Resampling(seed=1, n_resamples=500, groups=groups))
    generic = bootstrap_ci(values, lambda v: float(np.mean(v)), Resampling(seed=1, n_resamples=500, groups=groups))
    batched = bootstrap_ci(values, _median, Resampling(seed=1, n_resamples=500, groups=groups, batched=_median_batched))
    assert fast == pytest.approx(generic, abs=1e-12)  # same clusters drawn on both paths
    assert batched == pytest.approx(bootstrap_ci(values, _median, Resampling(seed=1, n_resamples=500, groups=groups)),
                                    abs=1e-12)
    assert fast == bootstrap_ci(values, "mean", Resampling(seed=1, n_resamples=500, groups=groups))
    assert fast != bootstrap_ci(values, "mean", Resampling(seed=2, n_resamples=500, groups=groups))
    # Correlated samples: the cluster interval is wider than treating the 200 values as independent.
    plain = bootstrap_ci(values, "mean", Resampling(seed=1, n_resamples=500))
    assert fast[1] - fast[0] > 1.5 * (plain[1] - plain[0])


def test_cluster_bootstrap_unequal_clusters_and_pooled_mean() -> None:
    values = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    groups = ["a", "a", "a", "b", "c", "c"]
    lo, hi = bootstrap_ci(values, "mean", Resampling(seed=0, n_resamples=2000, groups=groups))
    # unequal clusters: batched cannot be used, generic path
    generic = bootstrap_ci(values, lambda v: float(np.mean(v)),
                           Resampling(seed=0, n_resamples=2000, groups=groups, batched=_median_batched))
    assert (lo, hi) == pytest.approx(generic, abs=1e-12)
    assert 0.0 <= lo < 4 / 6 < hi <= 1.0


def test_grouped_permutation_swaps_whole_clusters() -> None:
    old = [1.0] * 20
    new = [0.0] * 20  # every sample of 4 examples lower
    groups = [i // 5 for i in range(20)]
    test = paired_permutation(old, new, "mean", Resampling(seed=0, n_resamples=20_000, groups=groups))
    assert (test.p_lower, test.p_higher, test.method) == (1 / 16, 1.0, "exact")  # 2^4 swaps of 4 examples
    assert paired_permutation(old, new, "mean", Resampling(seed=0, groups=groups)) == paired_permutation(
        old, new, lambda v: float(np.mean(v)), Resampling(seed=0, groups=groups))
    assert paired_permutation(old, new, _median, Resampling(seed=0, n_resamples=300, groups=groups)) == paired_permutation(
        old, new, _median, Resampling(seed=0, n_resamples=300, groups=groups, batched=_median_batched))
    assert paired_permutation(old, new, "mean", Resampling(seed=0)).p_lower == 2.0 ** -20  # 20 pairs swap alone


def test_grouped_paired_bootstrap_resamples_clusters() -> None:
    rng = np.random.default_rng(14)
    shift = np.repeat(rng.normal(-0.05, 0.1, 30), 4)  # the change differs by example, shared by its samples
    old = rng.random(120)
    new = old + shift + rng.normal(0, 0.01, 120)
    groups = np.repeat(np.arange(30), 4).tolist()
    clustered = paired_bootstrap(old, new, "mean", Resampling(seed=0, groups=groups))
    plain = paired_bootstrap(old, new, "mean", Resampling(seed=0))
    assert clustered.delta == plain.delta
    assert clustered.ci_high - clustered.ci_low > 1.5 * (plain.ci_high - plain.ci_low)
    generic = paired_bootstrap(old, new, lambda v: float(np.mean(v)), Resampling(seed=0, groups=groups))
    assert (generic.ci_low, generic.ci_high) == pytest.approx((clustered.ci_low, clustered.ci_high), abs=1e-12)
    with pytest.raises(ValueError, match="labels"):
        bootstrap_ci([1.0, 2.0], "mean", Resampling(groups=["a"]))
