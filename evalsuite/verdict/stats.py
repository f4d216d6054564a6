"""Stage 7: the statistics behind intervals and baseline gating.

Why these tests: a metric measured on n examples is a noisy estimate, and comparing two runs on the
*same* examples is far more sensitive when the comparison is paired. Proportions (0/1 per example)
use the Wilson interval and McNemar's exact test on the discordant pairs; everything else uses the
percentile bootstrap for intervals, resampling example indices (jointly for old and new, so pairs
stay paired), and a paired randomization test for p-values: exact where enumeration is cheap, else a seeded
Monte Carlo estimate that carries its standard error. Every resampling function is seeded, so the same
inputs always give the same numbers.

Repeated samples (``repeats: N`` at temperature > 0) are correlated within an example, so the example,
not the sample, is the unit of resampling: ``groups`` (one label per value) makes the bootstrap resample
whole examples (cluster bootstrap) and the randomization test swap whole examples between the runs.

The three resampling functions take one ``Resampling`` (seed, count, confidence, vectorised aggregate,
clusters), so a verdict states how it resamples once and every step resamples the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

Aggregate = Callable[[Sequence[Any]], float] | Literal["mean"]
# Optional vectorised aggregate: (per-example values, index matrix [rows, m]) -> aggregate of each row's
# [values[i] for i in row]. m need not be len(values): paired_permutation passes old + new (2n values)
# with rows of n indices.
Batched = Callable[[Sequence[Any], np.ndarray], np.ndarray]

# Per-example values: a list, or a float array on the vectorised paths.
Values = Sequence[Any] | np.ndarray

# Elements of index matrix generated per chunk: bounds memory (~32 MB of int64) at n = 25,000.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Resampling:
    """How to resample: seeded, so the same inputs always give the same numbers.

    ``batched``: optional vectorised aggregate (see ``Batched``); ``groups``: one cluster label per value
    (e.g. the example id of each repeated sample), to resample and swap whole clusters.
    ``confidence`` is the level of the percentile intervals (unused by ``paired_permutation``)."""

    seed: int = 0
    n_resamples: int = 2000
    confidence: float = 0.95
    batched: Batched | None = None
    groups: Sequence[Any] | None = None


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Equal to ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")``; unlike the
    normal approximation it stays inside [0, 1] and behaves at 0/n and n/n.
    """
    if n <= 0:
        raise ValueError("wilson() needs n >= 1")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def _binomial_tails(k: int, n: int) -> tuple[float, float]:
    """(P(B <= k), P(B >= k)) for B ~ Binomial(n, 1/2). scipy.special is imported here, when a baseline is
    compared: a run without one never pays for it (scipy.stats would cost ~1 s)."""
    from scipy.special import bdtr, bdtrc  # binomial CDF / survival

    return float(bdtr(k, n, 0.5)), 1.0 if k == 0 else float(bdtrc(k - 1, n, 0.5))


def _index_chunks(
    rng: np.random.Generator, n: int, n_resamples: int, width: int | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Bootstrap index matrices, ``(start, stop, idx[stop - start, n])``, bounded in memory.

    ``width``: elements per row of what is built from ``idx`` (the expanded cluster resample), if not n."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, width or n))
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        yield start, stop, rng.integers(0, n, size=(stop - start, n))


def _resampled_means(values: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples (vectorised)."""
    out = np.empty(n_resamples)
    for start, stop, idx in _index_chunks(rng, values.shape[0], n_resamples):
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _resampled_aggregates(
    columns: Sequence[Sequence[Any]], aggregate: Callable[[Sequence[Any]], float], rng: np.random.Generator,
    n_resamples: int, batched: Batched | None,
) -> np.ndarray:
    """Generic path: the aggregate of each resample of each column (same indices for all columns).

    ``batched(values, idx)`` computes all rows of an index matrix at once; otherwise ``aggregate``
    is called per resample (fine for cheap aggregates, slow for e.g. sklearn scores at large n).
    """
    out = np.empty((n_resamples, len(columns)))
    for start, stop, idx in _index_chunks(rng, len(columns[0]), n_resamples):
        for j, column in enumerate(columns):
            if batched is not None:
                out[start:stop, j] = batched(column, idx)
            else:
                out[start:stop, j] = [aggregate([column[i] for i in row]) for row in idx]
    return out


@dataclass(frozen=True)
class _Clusters:
    """Values grouped by cluster (example), clusters in order of first appearance."""

    codes: np.ndarray  # cluster number of each value
    members: list[np.ndarray]  # value indices of each cluster, in value order
    counts: np.ndarray  # values per cluster

    @property
    def k(self) -> int:
        return len(self.members)

    @property
    def matrix(self) -> np.ndarray | None:
        """``members`` as a [k, m] matrix when every cluster has m values, else None."""
        if self.k and np.all(self.counts == self.counts[0]):
            return np.stack(self.members)
        return None

    def flat(self, drawn: np.ndarray) -> np.ndarray:
        """Value indices of a resample that drew the clusters ``drawn`` (all members of each)."""
        return np.concatenate([self.members[c] for c in drawn])

    def sums(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes, weights=values, minlength=self.k)


def _clusters(groups: Sequence[Any], n: int) -> _Clusters:
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} labels for {n} values")
    number: dict[Any, int] = {}
    codes = np.array([number.setdefault(g, len(number)) for g in groups], dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(number))
    members = np.split(order, np.cumsum(counts)[:-1]) if len(number) else []
    return _Clusters(codes, members, counts)


def _cluster_resampled_means(
    sums: np.ndarray, counts: np.ndarray, rng: np.random.Generator, n_resamples: int,
) -> np.ndarray:
    """Cluster bootstrap of a pooled mean: each resample's mean = drawn sums / drawn counts (vectorised)."""
    out = np.empty(n_resamples)
    for start, stop, idx in _index_chunks(rng, sums.shape[0], n_resamples):
        out[start:stop] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return out


def _cluster_resampled_aggregates(
    columns: Sequence[Sequence[Any]], clusters: _Clusters, aggregate: Callable[[Sequence[Any]], float],
    rng: np.random.Generator, n_resamples: int, batched: Batched | None,
) -> np.ndarray:
    """Generic cluster bootstrap: the aggregate of each resample of each column (same clusters for all).

    With ``batched`` and clusters of equal size m, a resample of k clusters is a rectangular index row
    of k * m values and all rows go to ``batched`` at once; otherwise ``aggregate`` is called per resample.
    """
    out = np.empty((n_resamples, len(columns)))
    matrix = clusters.matrix if batched is not None else None
    width = matrix.size if matrix is not None else len(columns[0])
    for start, stop, idx in _index_chunks(rng, clusters.k, n_resamples, width):
        if matrix is not None and batched is not None:
            flat = matrix[idx].reshape(stop - start, -1)
            for j, column in enumerate(columns):
                out[start:stop, j] = batched(column, flat)
        else:
            for r, drawn in enumerate(idx, start):
                chosen = clusters.flat(drawn)
                for j, column in enumerate(columns):
                    out[r, j] = aggregate([column[i] for i in chosen])
    return out


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    _z(confidence)  # validates
    tail = (1.0 - confidence) / 2.0
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [tail, 1.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Values, aggregate: Aggregate = "mean", resampling: Resampling = Resampling(),
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``aggregate(values)``.

    ``aggregate="mean"`` takes a vectorised numpy path (fast at n = 25,000); any callable taking a
    list of per-example values (e.g. corpus BLEU from sufficient statistics, F1 over (pred, gold)
    pairs) is called once per resample, unless ``batched`` computes many resamples at once.

    ``resampling.groups`` (one cluster label per value, e.g. the example id of each repeated sample): cluster
    bootstrap, resampling clusters with replacement and taking all values of each drawn cluster. The
    mean is then the pooled mean of the drawn values (sum of drawn cluster sums / sum of their counts).
    """
    if len(values) == 0:
        raise ValueError("bootstrap_ci() needs at least one value")
    rng = np.random.default_rng(resampling.seed)
    n_resamples, batched = resampling.n_resamples, resampling.batched
    if resampling.groups is not None:
        clusters = _clusters(resampling.groups, len(values))
        if aggregate == "mean":
            arr = np.asarray(values, dtype=float)
            samples = _cluster_resampled_means(clusters.sums(arr), clusters.counts, rng, n_resamples)
        else:
            samples = _cluster_resampled_aggregates([list(values)], clusters, aggregate, rng, n_resamples,
                                                    batched)[:, 0]
    elif aggregate == "mean":
        samples = _resampled_means(np.asarray(values, dtype=float), rng, n_resamples)
    else:
        samples = _resampled_aggregates([list(values)], aggregate, rng, n_resamples, batched)[:, 0]
    return _percentile_interval(samples, resampling.confidence)


def mcnemar_exact(
    b: int, c: int, *, alternative: Literal["two-sided", "worse", "better"] = "two-sided"
) -> float:
    """Exact McNemar test on the discordant pairs of a paired 0/1 comparison.

    ``b``: examples right before and wrong now (losses); ``c``: wrong before and right now (gains).
    Under "no change" each discordant pair is a fair coin, so b ~ Binomial(b + c, 1/2).
    ``two-sided`` equals ``scipy.stats.binomtest(b, b + c, 0.5).pvalue``; ``worse`` is
    P(B >= b), the one-sided p-value that the new run is worse; ``better`` is P(B <= b).
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    at_most_b, at_least_b = _binomial_tails(b, n)
    if alternative == "worse":
        return at_least_b
    if alternative == "better":
        return at_most_b
    if alternative == "two-sided":
        return min(1.0, 2.0 * min(at_most_b, at_least_b))
    raise ValueError(f"unknown alternative {alternative!r}")


@dataclass(frozen=True)
class PairedComparison:
    """Result of a paired bootstrap: ``delta = aggregate(new) - aggregate(old)`` on the same examples.

    ``p_lower``: one-sided p-value that the new aggregate is lower than the old (a drop, when higher
    is better); ``p_higher``: that it is higher. ``ci_low``/``ci_high``: percentile interval of delta.
    """

    delta: float
    p_lower: float
    p_higher: float
    ci_low: float
    ci_high: float


def paired_bootstrap(
    old_values: Values, new_values: Values, aggregate: Aggregate = "mean", resampling: Resampling = Resampling(),
) -> PairedComparison:
    """Paired bootstrap of the change in an aggregate between two runs on the same examples.

    Example indices are resampled jointly, so per-example correlation between the runs is kept
    (the reason a paired test detects smaller changes than comparing two intervals). The one-sided
    p-values use the bootstrap distribution shifted to the null (delta = 0), with the +1 correction
    so they are never exactly 0.

    ``resampling.groups`` (one cluster label per pair): resample whole clusters (e.g. all repeated samples of an
    example in both runs) instead of single pairs.
    """
    if len(old_values) != len(new_values):
        raise ValueError(f"paired values differ in length: {len(old_values)} vs {len(new_values)}")
    if len(old_values) == 0:
        raise ValueError("paired_bootstrap() needs at least one pair")
    rng = np.random.default_rng(resampling.seed)
    n_resamples, batched, groups = resampling.n_resamples, resampling.batched, resampling.groups
    clusters = _clusters(groups, len(old_values)) if groups is not None else None
    if aggregate == "mean":
        old = np.asarray(old_values, dtype=float)
        new = np.asarray(new_values, dtype=float)
        delta = float(new.mean() - old.mean())
        if clusters is not None:
            deltas = _cluster_resampled_means(clusters.sums(new - old), clusters.counts, rng, n_resamples)
        else:
            deltas = _resampled_means(new - old, rng, n_resamples)
    else:
        delta = float(aggregate(list(new_values)) - aggregate(list(old_values)))
        columns = [list(old_values), list(new_values)]
        if clusters is not None:
            both = _cluster_resampled_aggregates(columns, clusters, aggregate, rng, n_resamples, batched)
        else:
            both = _resampled_aggregates(columns, aggregate, rng, n_resamples, batched)
        deltas = both[:, 1] - both[:, 0]
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0 or not math.isfinite(delta):
        return PairedComparison(delta, math.nan, math.nan, math.nan, math.nan)
    centred = deltas - delta  # the sampling distribution of delta, moved to the null
    p_lower = (1 + int(np.count_nonzero(centred <= delta))) / (deltas.size + 1)
    p_higher = (1 + int(np.count_nonzero(centred >= delta))) / (deltas.size + 1)
    lo, hi = _percentile_interval(deltas, resampling.confidence)
    return PairedComparison(delta, min(1.0, p_lower), min(1.0, p_higher), lo, hi)


# Exact enumeration of the mean while it stays cheap: 2^16 sign patterns of the swappable examples are a few
# small matrix products. An aggregate computed per arrangement is enumerated while 2^k is at most the Monte
# Carlo rounds it replaces, so exactness never costs time.
EXACT_UNITS_MEAN = 16


@dataclass(frozen=True)
class RandomizationTest:
    """One-sided p-values of the paired randomization test and how they were obtained.

    ``method``: "exact" (every arrangement of the swappable examples enumerated, or counted when they all
    differ by the same amount) or "monte-carlo" (``rounds`` random arrangements, with the +1 correction),
    whose p-values carry the standard error ``se(p)``. ``rounds`` is 0 when exact."""

    p_lower: float
    p_higher: float
    method: Literal["exact", "monte-carlo"]
    rounds: int = 0

    def se(self, p: float) -> float:
        """Monte Carlo standard error of one of these p-values, sqrt(p(1 - p) / rounds); 0 when exact."""
        if self.method == "exact" or not math.isfinite(p):
            return 0.0
        return math.sqrt(p * (1.0 - p) / self.rounds)


_UNDEFINED = RandomizationTest(math.nan, math.nan, "exact")
_NO_DIFFERENCE = RandomizationTest(1.0, 1.0, "exact")  # nothing to swap: every arrangement is the observed one

# (start, stop, keep[stop - start, n]): True keeps a pair as observed, False swaps its old and new values.
KeepChunks = Iterator[tuple[int, int, np.ndarray]]


def _swap_chunks(rng: np.random.Generator, n: int, n_rounds: int, codes: np.ndarray | None = None) -> KeepChunks:
    """Random rounds with ``keep`` a fair coin per example, bounded in memory.

    ``codes`` (cluster number of each of the n pairs): one coin per cluster, shared by all its pairs."""
    rows = max(1, _CHUNK_ELEMENTS // n)
    coins = n if codes is None else int(codes.max()) + 1
    for start in range(0, n_rounds, rows):
        stop = min(n_rounds, start + rows)
        keep = rng.integers(0, 2, size=(stop - start, coins), dtype=bool)
        yield start, stop, keep if codes is None else keep[:, codes]


def _sign_patterns(k: int, width: int | None = None) -> Iterator[np.ndarray]:
    """All 2^k rows of k booleans, in chunks bounded in memory (``width``: elements per row built from them)."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, width or k))
    for start in range(0, 1 << k, rows):
        numbers = np.arange(start, min(1 << k, start + rows), dtype=np.int64)
        yield ((numbers[:, None] >> np.arange(k)) & 1).astype(bool)


def _all_swaps(units: np.ndarray, swappable: np.ndarray) -> KeepChunks:
    """Every arrangement of the swappable units (the others stay as observed): 2^k rounds of keep[., n]."""
    n_units, start = int(units.max()) + 1, 0
    for bits in _sign_patterns(swappable.size, units.size):
        unit_keep = np.ones((bits.shape[0], n_units), dtype=bool)
        unit_keep[:, swappable] = bits
        yield start, start + bits.shape[0], unit_keep[:, units]
        start += bits.shape[0]


def paired_permutation(
    old_values: Values, new_values: Values, aggregate: Aggregate = "mean", resampling: Resampling = Resampling(),
) -> RandomizationTest:
    """Paired randomization test of ``aggregate(new) - aggregate(old)``: one-sided p-values each way.

    Why not the shifted bootstrap: its null distribution is a guess (the observed sampling spread, moved
    to 0) and at small n it is too narrow, e.g. 4 of 8 examples flipping to wrong gave p < 0.001 where
    no test can honestly go below 1/16. Here the null is exact in kind: if the change did nothing, each
    example's old and new values are exchangeable, so each arrangement swaps every pair with probability 1/2
    (Noreen 1989; Riezler & Maxwell 2005; sacrebleu's paired-ar) and recomputes the statistic.

    Exact where enumeration is cheap: pairs with equal old and new values cannot change anything when
    swapped, so only the k others count; for the mean, when they all differ by the same amount (0/1
    values: McNemar's exact test), the statistic is a count and the p-value a binomial tail at any k, and
    otherwise all 2^k sign patterns are enumerated while k <= ``EXACT_UNITS_MEAN``; an aggregate called per
    arrangement is enumerated while 2^k <= ``resampling.n_resamples``. Else ``resampling.n_resamples`` random
    rounds (seeded), p-values with the +1 correction: ``p_lower = (1 + #{d' <= d}) / (R + 1)``, ``p_higher``
    likewise with ``>=``, and a Monte Carlo standard error (``RandomizationTest.se``).

    ``aggregate="mean"`` flips the signs of the per-example differences (vectorised, fast at n = 25,000).
    A callable is called per round on each side, unless ``batched(values, idx)`` computes many rounds at
    once: it then gets old + new concatenated (length 2n) and index matrices picking each round's sides.

    ``resampling.groups`` (one cluster label per pair, e.g. the example id of repeated samples): each round swaps
    whole clusters, so the exchangeable unit is the example, not the sample.
    """
    n = len(old_values)
    if n != len(new_values):
        raise ValueError(f"paired values differ in length: {n} vs {len(new_values)}")
    if n == 0:
        raise ValueError("paired_permutation() needs at least one pair")
    if resampling.n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {resampling.n_resamples}")
    codes = _clusters(resampling.groups, n).codes if resampling.groups is not None else None
    if aggregate == "mean":
        return _mean_test(np.asarray(old_values, dtype=float), np.asarray(new_values, dtype=float), codes, resampling)
    return _aggregate_test(list(old_values), list(new_values), aggregate, codes, resampling)


def _mean_test(old: np.ndarray, new: np.ndarray, codes: np.ndarray | None, resampling: Resampling) -> RandomizationTest:
    """The mean: d' = sum over units of (+/-) unit difference / n, so only the units' difference sums matter."""
    n = old.size
    diff = new - old
    total = float(diff.sum())
    observed = total / n
    # Magnitude of the aggregates themselves: float round-off in d' is relative to it.
    tol = 1e-9 * max(float(max(np.abs(old).max(), np.abs(new).max())), abs(observed))
    if not math.isfinite(observed):
        return _UNDEFINED
    sums = diff if codes is None else np.bincount(codes, weights=diff)
    swappable = sums[np.abs(sums) > tol * n]
    k = swappable.size
    if k == 0:
        return _NO_DIFFERENCE
    magnitude = np.abs(swappable)
    if np.allclose(magnitude, magnitude[0], rtol=1e-9, atol=0.0):
        # d' = magnitude * (2B - k) / n with B ~ Binomial(k, 1/2) the number of positive terms.
        positive = int(np.count_nonzero(swappable > 0))
        at_most, at_least = _binomial_tails(positive, k)
        return RandomizationTest(at_most, at_least, "exact")
    if k <= EXACT_UNITS_MEAN:
        rest = total - float(swappable.sum())  # the units with no difference: ~0, kept for round-off parity
        stats = np.concatenate([(2.0 * (bits @ swappable) - swappable.sum() + rest) / n for bits in _sign_patterns(k)])
        return _p_values(stats, observed, tol, "exact")
    rng = np.random.default_rng(resampling.seed)
    stats = np.empty(resampling.n_resamples)
    for start, stop, keep in _swap_chunks(rng, n, resampling.n_resamples, codes):
        # d' = sum(+diff kept, -diff swapped) / n = (2 * kept . diff - total) / n
        stats[start:stop] = (2.0 * (keep @ diff) - total) / n
    return _p_values(stats, observed, tol, "monte-carlo")


def _aggregate_test(old: list[Any], new: list[Any], aggregate: Callable[[Sequence[Any]], float],
                    codes: np.ndarray | None, resampling: Resampling) -> RandomizationTest:
    """Any aggregate: recompute it on both sides of every arrangement (enumerated when few units differ)."""
    n = len(old)
    units = codes if codes is not None else np.arange(n)
    differs = np.array([not _same(a, b) for a, b in zip(old, new)], dtype=float)
    swappable = np.flatnonzero(np.bincount(units, weights=differs) > 0)
    if swappable.size == 0:
        return _NO_DIFFERENCE
    if swappable.size <= math.log2(resampling.n_resamples):
        chunks = _all_swaps(units, swappable)
        observed, scale, stats = _round_statistics(old, new, aggregate, resampling.batched, chunks, 1 << swappable.size)
        method: Literal["exact", "monte-carlo"] = "exact"
    else:
        rng = np.random.default_rng(resampling.seed)
        chunks = _swap_chunks(rng, n, resampling.n_resamples, codes)
        observed, scale, stats = _round_statistics(old, new, aggregate, resampling.batched, chunks,
                                                   resampling.n_resamples)
        method = "monte-carlo"
    stats = stats[np.isfinite(stats)]
    if stats.size == 0 or not math.isfinite(observed):
        return _UNDEFINED
    if not math.isfinite(scale):
        scale = float(np.abs(stats).max())
    return _p_values(stats, observed, 1e-9 * max(scale, abs(observed)), method)


def _same(a: Any, b: Any) -> bool:
    """Whether swapping a pair's two values changes nothing (values may be tuples, lists or count vectors)."""
    try:
        return bool(a == b)
    except ValueError:  # numpy arrays compare element-wise
        return bool(np.array_equal(a, b))


def _round_statistics(
    old: list[Any], new: list[Any], aggregate: Callable[[Sequence[Any]], float], batched: Batched | None,
    chunks: KeepChunks, rounds: int,
) -> tuple[float, float, np.ndarray]:
    """(observed d, magnitude of the aggregates, d' of every round) for rounds given as keep matrices."""
    n = len(old)
    stats = np.empty(rounds)
    if batched is not None:
        both = old + new  # old at 0..n-1, new at n..2n-1
        columns = np.arange(n)
        observed_pair = batched(both, np.stack([columns + n, columns]))
        observed = float(observed_pair[0] - observed_pair[1])  # the same function as every round's d'
        scale = float(np.nanmax(np.abs(observed_pair), initial=0.0))
        for start, stop, keep in chunks:
            stats[start:stop] = batched(both, columns + n * keep) - batched(both, columns + n * ~keep)
        return observed, scale, stats
    agg_new, agg_old = float(aggregate(new)), float(aggregate(old))
    for start, _, keep in chunks:
        for r, row in enumerate(keep, start):
            new_r = [b if k else a for a, b, k in zip(old, new, row)]
            old_r = [a if k else b for a, b, k in zip(old, new, row)]
            stats[r] = float(aggregate(new_r)) - float(aggregate(old_r))
    return agg_new - agg_old, max(abs(agg_new), abs(agg_old)), stats


def _p_values(
    stats: np.ndarray, observed: float, tol: float, method: Literal["exact", "monte-carlo"],
) -> RandomizationTest:
    """One-sided p-values from the rounds' statistics. A round that reproduces the observed configuration
    (or an equivalent one) must count as a tie, not miss by round-off: ``tol`` is far below any meaningful
    difference. Enumerated rounds include the observed arrangement itself; random ones get the +1 correction."""
    at_most = int(np.count_nonzero(stats <= observed + tol))
    at_least = int(np.count_nonzero(stats >= observed - tol))
    if method == "exact":
        return RandomizationTest(at_most / stats.size, at_least / stats.size, "exact")
    rounds = stats.size
    return RandomizationTest(min(1.0, (1 + at_most) / (rounds + 1)), min(1.0, (1 + at_least) / (rounds + 1)),
                             "monte-carlo", rounds)
