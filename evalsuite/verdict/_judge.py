"""Stage 7: turn one metric's per-example values into a verdict a reviewer can act on.

Two questions, answered separately: does the value meet the case's thresholds (``min``/``max``), and
did it change against the committed baseline by more than noise? The second one is a *paired* test
on the examples present in both runs (McNemar exact for 0/1 values, a paired randomization test
otherwise, with a paired-bootstrap interval of the change), one-sided in the metric's worse direction, so a real drop is caught at small n while a reshuffle of
which examples are right is not called a regression. ``max_drop`` lets a case tolerate a
statistically real but practically irrelevant drop.

Repeats (``repeats: N``, keys ``"<example_id>#<sample>"`` with several samples per example): samples of
one example are correlated, so the example is the unit. The interval is a cluster bootstrap (resample
examples, keep all their samples); the baseline comparison pairs examples, not samples (samples at
temperature > 0 are exchangeable draws): each example's value is the mean of its samples in each run,
then the paired randomization test and paired bootstrap run on those per-example means. Corpus metrics
are compared on all samples, resampled and swapped by example, when both runs have the same number of
samples per example, and not compared otherwise. Single-sample results are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.records import MetricResult, SampleKey
from evalsuite.verdict.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap, paired_permutation, wilson

# The generic (per-resample Python call) bootstrap is slower; corpus metrics get fewer resamples.
N_RESAMPLES_MEAN = 2000
N_RESAMPLES_CORPUS = 1000


class MetricLike(Protocol):
    name: str
    kind: str  # "proportion" | "mean" | "corpus"
    higher_is_better: bool
    definition: str

    def aggregate(self, values: Sequence[Any]) -> float: ...

    # Optional: ``aggregate_resamples(values, idx) -> ndarray`` with idx an int matrix [resamples, n]
    # giving the aggregate of every row's resample at once. Corpus metrics with a costly aggregate
    # (sklearn F1 at n = 25,000 costs ~70 ms a call; a gated metric needs ~3,000 calls) should add it.


def fmt(value: float | None) -> str:
    """Compact number for tables and reasons: 0.912, 44.39, 1,234."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_delta(delta: float | None) -> str:
    """Signed change: +0.012, -1.50."""
    if delta is None or math.isnan(delta):
        return "-"
    return ("+" if delta >= 0 else "-") + fmt(abs(delta))


def fmt_p(p: float | None) -> str:
    """``p=0.031`` or ``p<0.001``."""
    if p is None or math.isnan(p):
        return "p=-"
    return f"p={p:.2g}" if p >= 0.001 else "p<0.001"


def _numeric(values: Sequence[Any]) -> np.ndarray:
    """Per-example values as floats; None (no value for that example) becomes NaN."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _is_binary(arr: np.ndarray) -> bool:
    finite = arr[~np.isnan(arr)]
    return bool(np.all((finite == 0.0) | (finite == 1.0)))


def _example_id(key: str) -> str:
    """``"<example_id>#<sample>"`` -> example id (ids may themselves contain '#')."""
    return SampleKey.parse(key).example_id


def _has_repeats(keys: Any) -> bool:
    """True when some example id appears with more than one sample."""
    seen: set[str] = set()
    for key in keys:
        eid = _example_id(key)
        if eid in seen:
            return True
        seen.add(eid)
    return False


def _samples_text(counts: Sequence[int]) -> str:
    lo, hi = min(counts), max(counts)
    return f"{hi}" if lo == hi else f"{lo}-{hi}"


def _aggregate_for(metric: MetricLike, arr: np.ndarray, value: float) -> Callable[[Sequence[Any]], float] | str:
    """Use the vectorised mean when the metric's aggregate is the mean of its values (checked)."""
    finite = arr[~np.isnan(arr)]
    if finite.size and math.isclose(value, float(finite.mean()), rel_tol=1e-9, abs_tol=1e-12):
        return "mean"
    return metric.aggregate


def judge(
    metric: MetricLike,
    spec: MetricSpec | None,
    values: Sequence[Any],
    keys: Sequence[str],
    baseline: Mapping[str, Any] | None = None,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    confidence: float = 0.95,
) -> MetricResult:
    """Aggregate, interval, threshold check and baseline comparison for one metric of one item.

    ``values[i]`` belongs to ``keys[i]`` (``"<example_id>#<sample>"``); ``baseline`` maps the same
    keys to the baseline run's per-example values (None: no baseline for this item/metric).
    """
    if len(values) != len(keys):
        raise ValueError(f"{metric.name}: {len(values)} values but {len(keys)} keys")
    spec = spec or MetricSpec()
    result = MetricResult(
        name=metric.name, kind=metric.kind, value=None, n=0, min=spec.min, max=spec.max, max_drop=spec.max_drop,
        higher_is_better=metric.higher_is_better, definition=metric.definition,
    )
    numeric = metric.kind in ("proportion", "mean")
    arr = _numeric(values) if numeric else None
    result.n = int(np.count_nonzero(~np.isnan(arr))) if numeric else len(values)
    if result.n == 0:
        result.verdict = "error"
        result.reason = f"{metric.name}: no example produced a value (all calls failed or were skipped)"
        return result
    present = [v for v in values if v is not None] if numeric else list(values)
    value = metric.aggregate(present)
    if value is None or not math.isfinite(float(value)):
        result.verdict = "error"
        result.reason = f"{metric.name}: the aggregate is undefined ({value}) on {result.n} examples"
        return result
    result.value = value = float(value)
    example_ids = [_example_id(k) for k in keys]
    repeats = _has_repeats(keys)

    # Interval.
    if repeats:
        binary = False
        if numeric:
            present_mask = ~np.isnan(arr)
            groups = [e for e, ok in zip(example_ids, present_mask) if ok]
            aggregate = "mean" if metric.kind == "proportion" and _is_binary(arr) else _aggregate_for(metric, arr, value)
            data = arr[present_mask] if aggregate == "mean" else present
            n_res = N_RESAMPLES_MEAN if aggregate == "mean" else N_RESAMPLES_CORPUS
        else:
            groups, aggregate, data, n_res = example_ids, metric.aggregate, list(values), N_RESAMPLES_CORPUS
        lo, hi = bootstrap_ci(data, aggregate, seed=seed, n_resamples=n_res, confidence=confidence,
                              batched=getattr(metric, "aggregate_resamples", None), groups=groups)
        result.ci_low, result.ci_high = (None if math.isnan(lo) else lo), (None if math.isnan(hi) else hi)
        result.interval = "cluster-bootstrap"
        counts: dict[str, int] = {}
        for e in groups:
            counts[e] = counts.get(e, 0) + 1
        n_text = f" on n={result.n} ({len(counts)} examples x {_samples_text(list(counts.values()))} samples)"
    elif numeric and metric.kind == "proportion" and _is_binary(arr):
        finite = arr[~np.isnan(arr)]
        result.ci_low, result.ci_high = wilson(int(finite.sum()), finite.size, confidence)
        result.interval = "wilson"
        aggregate: Callable[[Sequence[Any]], float] | str = "mean"
        binary = True
    else:
        binary = False
        if numeric:
            aggregate = _aggregate_for(metric, arr, value)
            data: Sequence[Any] = arr[~np.isnan(arr)] if aggregate == "mean" else present
            n_res = N_RESAMPLES_MEAN if aggregate == "mean" else N_RESAMPLES_CORPUS
        else:
            aggregate, data, n_res = metric.aggregate, list(values), N_RESAMPLES_CORPUS
        lo, hi = bootstrap_ci(data, aggregate, seed=seed, n_resamples=n_res, confidence=confidence,
                              batched=getattr(metric, "aggregate_resamples", None))
        result.ci_low, result.ci_high = (None if math.isnan(lo) else lo), (None if math.isnan(hi) else hi)
        result.interval = "bootstrap"
    if not repeats:
        n_text = f" on n={result.n}"

    parts = [f"{metric.name} = {fmt(value)}" + _ci_text(result, confidence) + n_text]

    # Thresholds.
    missed: list[str] = []
    if spec.min is not None and value < spec.min:
        missed.append(f"below min {fmt(spec.min)}")
    if spec.max is not None and value > spec.max:
        missed.append(f"above max {fmt(spec.max)}")
    if missed:
        parts.append("FAILS threshold: " + " and ".join(missed) + _straddle_note(result, spec, confidence))
    elif spec.min is not None or spec.max is not None:
        bounds = [f"min {fmt(spec.min)}" if spec.min is not None else "", f"max {fmt(spec.max)}" if spec.max is not None else ""]
        parts.append("meets " + " and ".join(b for b in bounds if b) + _straddle_note(result, spec, confidence))

    # Baseline.
    baseline_status = None
    if baseline is not None and (repeats or _has_repeats(baseline)):
        baseline_status, text = _compare_by_example(metric, spec, values, keys, baseline, result, aggregate,
                                                    alpha=alpha, seed=seed, confidence=confidence)
        parts.append(text)
    elif baseline is not None:
        baseline_status, text = _compare(metric, spec, values, keys, baseline, result, binary, aggregate,
                                         alpha=alpha, seed=seed, confidence=confidence)
        parts.append(text)

    result.verdict = "fail" if missed else (baseline_status or "pass")
    result.reason = "; ".join(parts)
    return result


def _ci_text(result: MetricResult, confidence: float) -> str:
    if result.ci_low is None or result.ci_high is None:
        return ""
    return f" ({confidence:.0%} CI {fmt(result.ci_low)}-{fmt(result.ci_high)}, {result.interval})"


def _straddle_note(result: MetricResult, spec: MetricSpec, confidence: float) -> str:
    """Say so when the interval contains a threshold: the pass/fail may flip with more examples."""
    if result.ci_low is None or result.ci_high is None:
        return ""
    for bound in (spec.min, spec.max):
        if bound is not None and result.ci_low <= bound <= result.ci_high:
            return f" (the {confidence:.0%} CI contains {fmt(bound)}: too few examples to be sure)"
    return ""


def _count_matches(result: MetricResult, now: Mapping[str, Any], old: Mapping[str, Any], paired: list[str]) -> str:
    """Fill the result's pairing counts; the reason-text clause for examples present in only one run."""
    new_only = sum(1 for k in now if k not in old)
    gone = sum(1 for k in old if k not in now)
    result.n_paired, result.n_new, result.n_missing = len(paired), new_only, gone
    if not (new_only or gone):
        return ""
    return (f"; not compared: {new_only} example(s) new since the baseline, {gone} baseline example(s) "
            f"missing now (refresh the baseline if the dataset or repeats changed on purpose)")


def _compare(
    metric: MetricLike, spec: MetricSpec, values: Sequence[Any], keys: Sequence[str], baseline: Mapping[str, Any],
    result: MetricResult, binary: bool, aggregate: Callable[[Sequence[Any]], float] | str, *,
    alpha: float, seed: int, confidence: float,
) -> tuple[str | None, str]:
    """Paired comparison on the keys present (with a value) in both runs; fills the result's baseline fields."""
    now = dict(zip(keys, values))
    paired = [k for k in keys if k in baseline and now[k] is not None and baseline[k] is not None]
    unmatched = _count_matches(result, now, baseline, paired)
    if not paired:
        return None, "no baseline comparison: no example key matches the baseline" + unmatched

    old_v = [baseline[k] for k in paired]
    new_v = [now[k] for k in paired]
    if binary and _is_binary(_numeric(old_v)):
        old_a, new_a = _numeric(old_v), _numeric(new_v)
        lost = int(np.count_nonzero((old_a == 1) & (new_a == 0)))
        gained = int(np.count_nonzero((old_a == 0) & (new_a == 1)))
        base, delta = float(old_a.mean()), float(new_a.mean() - old_a.mean())
        p_fewer = mcnemar_exact(lost, gained, alternative="worse")
        p_more = mcnemar_exact(lost, gained, alternative="better")
        result.test = "mcnemar-exact"
        detail = f"{lost} flipped to 0, {gained} flipped to 1; McNemar exact"
    else:
        agg = aggregate
        n_res = N_RESAMPLES_MEAN if agg == "mean" else N_RESAMPLES_CORPUS
        batched = getattr(metric, "aggregate_resamples", None)
        base = float(np.mean(_numeric(old_v))) if agg == "mean" else float(metric.aggregate(old_v))
        # The bootstrap gives the interval of the change; its shifted-null p-values are too small at
        # small n, so significance comes from the randomization test (exchangeable pairs under no change).
        pc = paired_bootstrap(old_v, new_v, agg, seed=seed, n_resamples=n_res, confidence=confidence,
                              batched=batched)
        p_fewer, p_more = paired_permutation(old_v, new_v, agg, seed=seed, n_resamples=n_res, batched=batched)
        delta = pc.delta
        result.test = "paired-permutation"
        detail = (f"{confidence:.0%} CI of change {fmt_delta(pc.ci_low)} to {fmt_delta(pc.ci_high)} by paired bootstrap; "
                  "paired randomization test")
    return _decide(metric, spec, result, base, delta, p_fewer, p_more, f"{len(paired)} paired", detail, unmatched,
                   alpha=alpha)


def _decide(
    metric: MetricLike, spec: MetricSpec, result: MetricResult, base: float, delta: float, p_fewer: float,
    p_more: float, paired_text: str, detail: str, unmatched: str, *, alpha: float,
) -> tuple[str | None, str]:
    """One-sided p-value in the direction of the change, max_drop, verdict and reason text."""
    hib = metric.higher_is_better
    p_worse, p_better = (p_fewer, p_more) if hib else (p_more, p_fewer)
    worsening = -delta if hib else delta  # > 0: moved in the worse direction
    result.baseline, result.delta = base, delta
    result.p_value = p_worse if worsening >= 0 else p_better
    direction = "drop" if worsening >= 0 else "improvement"
    text = (f"vs baseline {fmt(base)} on {paired_text}: change {fmt_delta(delta)} ({detail} one-sided "
            f"{fmt_p(result.p_value)} for a {direction}")
    if worsening > 0 and p_worse < alpha:
        if spec.max_drop is not None and worsening <= spec.max_drop:
            return "unchanged", text + f") - significant at alpha {alpha:g} but within max_drop {fmt(spec.max_drop)}" + unmatched
        tolerance = f", beyond max_drop {fmt(spec.max_drop)}" if spec.max_drop is not None else ""
        return "regression", text + f") - REGRESSION: significant at alpha {alpha:g}{tolerance}" + unmatched
    if worsening < 0 and p_better < alpha:
        return "improved", text + f") - improved: significant at alpha {alpha:g}; consider refreshing the baseline" + unmatched
    return "unchanged", text + f") - not significant at alpha {alpha:g}" + unmatched


def _by_example(keys: Any, values: Any) -> dict[str, list[Any]]:
    """Example id -> its present (not None) sample values, in key order; every example id is listed."""
    out: dict[str, list[Any]] = {}
    for key, value in zip(keys, values):
        samples = out.setdefault(_example_id(key), [])
        if value is not None:
            samples.append(value)
    return out


def _compare_by_example(
    metric: MetricLike, spec: MetricSpec, values: Sequence[Any], keys: Sequence[str], baseline: Mapping[str, Any],
    result: MetricResult, aggregate: Callable[[Sequence[Any]], float] | str, *,
    alpha: float, seed: int, confidence: float,
) -> tuple[str | None, str]:
    """Repeats: paired comparison by example id (samples are exchangeable draws, not pairs)."""
    now = _by_example(keys, values)
    old = _by_example(baseline.keys(), baseline.values())
    paired = [e for e in now if e in old and now[e] and old[e]]
    unmatched = _count_matches(result, now, old, paired)
    if not paired:
        return None, "no baseline comparison: no example id matches the baseline" + unmatched
    counts = [len(now[e]) for e in paired] + [len(old[e]) for e in paired]
    batched = getattr(metric, "aggregate_resamples", None)

    if metric.kind in ("proportion", "mean"):
        old_m = [float(np.mean(_numeric(old[e]))) for e in paired]
        new_m = [float(np.mean(_numeric(now[e]))) for e in paired]
        agg = aggregate
        base = float(np.mean(old_m)) if agg == "mean" else float(metric.aggregate(old_m))
        n_res = N_RESAMPLES_MEAN if agg == "mean" else N_RESAMPLES_CORPUS
        pc = paired_bootstrap(old_m, new_m, agg, seed=seed, n_resamples=n_res, confidence=confidence,
                              batched=batched)
        p_fewer, p_more = paired_permutation(old_m, new_m, agg, seed=seed, n_resamples=n_res, batched=batched)
        paired_text = f"{len(paired)} paired examples, per example (mean of {_samples_text(counts)} samples)"
        how = "paired bootstrap over examples"
    else:
        differ = [e for e in paired if len(now[e]) != len(old[e])]
        if differ:
            result.n_paired = 0
            return None, (f"baseline not compared: {len(differ)} of {len(paired)} example(s) have a different "
                          f"number of samples than in the baseline ({_samples_text([len(now[e]) for e in paired])} "
                          f"now, {_samples_text([len(old[e]) for e in paired])} before), so examples cannot be "
                          f"paired (refresh the baseline if repeats changed on purpose)" + unmatched)
        old_v = [v for e in paired for v in old[e]]
        new_v = [v for e in paired for v in now[e]]
        groups = [e for e in paired for _ in now[e]]
        base = float(metric.aggregate(old_v))
        pc = paired_bootstrap(old_v, new_v, metric.aggregate, seed=seed, n_resamples=N_RESAMPLES_CORPUS,
                              confidence=confidence, batched=batched, groups=groups)
        p_fewer, p_more = paired_permutation(old_v, new_v, metric.aggregate, seed=seed,
                                             n_resamples=N_RESAMPLES_CORPUS, batched=batched, groups=groups)
        paired_text = (f"{len(paired)} paired examples x {_samples_text(counts)} samples, "
                       "resampled and swapped by example")
        how = "cluster paired bootstrap"
    result.test = "paired-permutation"
    detail = (f"{confidence:.0%} CI of change {fmt_delta(pc.ci_low)} to {fmt_delta(pc.ci_high)} by {how}; "
              "paired randomization test")
    return _decide(metric, spec, result, base, pc.delta, p_fewer, p_more, paired_text, detail, unmatched,
                   alpha=alpha)
