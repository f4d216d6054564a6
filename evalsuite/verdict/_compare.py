"""Verdict step 3: did the metric change against the committed baseline by more than noise?

A *paired* test on the examples present in both runs (McNemar exact for 0/1 values, a paired
randomization test otherwise, with a paired-bootstrap interval of the change), one-sided in the metric's
worse direction, so a real drop is caught at small n while a reshuffle of which examples are right is not
called a regression. ``max_drop`` (``max_increase`` for lower-is-better metrics) lets a case tolerate a
statistically real but practically irrelevant worsening. ``p_value`` is always the one-sided p for a worsening,
``p_improvement`` the other side, and each says whether it is exact or a Monte Carlo estimate (with its standard
error). Metrics that measure the machine more than the model (latency, tokens) are compared but only gated when
the case sets a tolerance.

Repeats: samples at temperature > 0 are exchangeable draws, so examples are paired, not samples: each
example's value is the mean of its samples in each run. Corpus metrics are compared on all samples,
resampled and swapped by example, when both runs have the same number of samples per example, and not
compared otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.verdict._interval import Interval
from evalsuite.verdict._power import Detectable, for_mean, for_proportion
from evalsuite.verdict._values import (N_RESAMPLES_CORPUS, example_id, has_repeats, is_binary, n_resamples,
                                       n_resamples_near_alpha, numeric, samples_text)
from evalsuite.verdict.format import fmt, fmt_delta, fmt_p_test
from evalsuite.verdict.stats import (Aggregate, RandomizationTest, Resampling, mcnemar_exact, paired_bootstrap,
                                     paired_permutation)

if TYPE_CHECKING:
    from evalsuite.metrics import MetricInfo

Status = Literal["regression", "improved", "unchanged"]


@dataclass(frozen=True)
class Pairing:
    """How the two runs' keys matched: paired, new since the baseline, missing now."""

    n_paired: int
    n_new: int
    n_missing: int

    @classmethod
    def of(cls, now: Iterable[str], old: Iterable[str], paired: Sequence[str]) -> Pairing:
        now_keys, old_keys = set(now), set(old)
        return cls(len(paired), len(now_keys - old_keys), len(old_keys - now_keys))

    @property
    def unmatched(self) -> str:
        """The reason's clause for examples present in only one run."""
        if not (self.n_new or self.n_missing):
            return ""
        return (f"; not compared: {self.n_new} example(s) new since the baseline, {self.n_missing} baseline example(s) "
                f"missing now (refresh the baseline if the dataset or repeats changed on purpose)")


@dataclass(frozen=True)
class Change:
    """The paired change: ``delta = aggregate(new) - aggregate(old)`` with one-sided p-values each way."""

    baseline: float
    delta: float
    p: RandomizationTest  # p_lower / p_higher and whether they are exact
    test: str  # "mcnemar-exact" | "paired-permutation"
    paired_text: str  # "200 paired", "8 paired examples, per example (mean of 5 samples)"
    detail: str  # how the change was tested
    detectable: Detectable | None = None  # the minimum detectable worsening on these pairs, when there is a formula


@dataclass(frozen=True)
class Gate:
    """How the metric is gated: its bad direction's word, the tolerance that applies, whether it gates at all."""

    higher_is_better: bool
    tolerance: float | None
    tolerance_name: str  # "max_drop" | "max_increase"
    gated: bool

    @classmethod
    def of(cls, info: MetricInfo, spec: MetricSpec) -> Gate:
        """Lower-is-better metrics take ``max_increase`` (``max_drop`` as before, when only that is set); a metric
        not gated by default (latency, tokens) is gated once the case sets either."""
        if info.higher_is_better or spec.max_increase is None:
            tolerance, name = spec.max_drop, "max_drop"
        else:
            tolerance, name = spec.max_increase, "max_increase"
        asked = spec.max_drop is not None or spec.max_increase is not None
        return cls(info.higher_is_better, tolerance, name, info.gated_by_default or asked)

    @property
    def worse(self) -> str:
        return "drop" if self.higher_is_better else "increase"


@dataclass(frozen=True)
class Comparison:
    status: Status | None  # None: nothing could be paired, no verdict from the baseline
    text: str
    pairing: Pairing
    baseline: float | None = None
    delta: float | None = None
    p_value: float | None = None  # one-sided, for a worsening
    p_improvement: float | None = None
    p_method: str = ""
    p_mc_se: float | None = None
    test: str = ""
    detectable: Detectable | None = None

    def fields(self) -> dict[str, Any]:
        """The ``MetricResult`` fields this comparison fills."""
        return {"baseline": self.baseline, "delta": self.delta, "p_value": self.p_value,
                "p_improvement": self.p_improvement, "p_method": self.p_method, "p_mc_se": self.p_mc_se,
                "test": self.test, **asdict(self.pairing)}


def compare(info: MetricInfo, spec: MetricSpec, measured: Interval, values: Sequence[Any], keys: Sequence[str],
            baseline: Mapping[str, Any], *, alpha: float, resampling: Resampling) -> Comparison:
    """``baseline`` maps sample keys to the baseline run's values; paired by example when either run has repeats."""
    by_example = measured.repeats or has_repeats(baseline)
    gate = Gate.of(info, spec)
    pairing, change = (_by_example if by_example else _by_key)(info, measured, values, keys, baseline, resampling,
                                                               alpha)
    if isinstance(change, str):
        return Comparison(None, change + pairing.unmatched, pairing)
    return _decide(change, pairing, gate, alpha)


def _by_key(info: MetricInfo, measured: Interval, values: Sequence[Any], keys: Sequence[str],
            baseline: Mapping[str, Any], resampling: Resampling, alpha: float) -> tuple[Pairing, Change | str]:
    """Pairs are the keys present (with a value) in both runs."""
    now = dict(zip(keys, values))
    paired = [k for k in keys if k in baseline and now[k] is not None and baseline[k] is not None]
    pairing = Pairing.of(now, baseline, paired)
    if not paired:
        return pairing, "no baseline comparison: no example key matches the baseline"
    old_v, new_v = [baseline[k] for k in paired], [now[k] for k in paired]
    if measured.method == "wilson" and is_binary(numeric(old_v)):
        old_a, new_a = numeric(old_v), numeric(new_v)
        lost = int(np.count_nonzero((old_a == 1) & (new_a == 0)))
        gained = int(np.count_nonzero((old_a == 0) & (new_a == 1)))
        p = RandomizationTest(mcnemar_exact(lost, gained, alternative="worse"),
                              mcnemar_exact(lost, gained, alternative="better"), "exact")
        detectable = for_proportion(len(paired), float(old_a.mean()), (lost + gained) / len(paired), alpha=alpha,
                                    higher_is_better=info.higher_is_better)
        return pairing, Change(float(old_a.mean()), float(new_a.mean() - old_a.mean()), p, "mcnemar-exact",
                               f"{len(paired)} paired", f"{lost} flipped to 0, {gained} flipped to 1; McNemar exact",
                               detectable)
    agg = measured.aggregate
    base = float(np.mean(numeric(old_v))) if agg == "mean" else float(info.aggregate(old_v))
    return pairing, _tested(old_v, new_v, base, replace(resampling, n_resamples=n_resamples(agg)), agg,
                            f"{len(paired)} paired", "paired bootstrap", alpha)


def _by_example(info: MetricInfo, measured: Interval, values: Sequence[Any], keys: Sequence[str],
                baseline: Mapping[str, Any], resampling: Resampling, alpha: float) -> tuple[Pairing, Change | str]:
    """Repeats: pairs are the example ids present in both runs (samples are exchangeable draws, not pairs)."""
    now, old = _samples(keys, values), _samples(baseline.keys(), baseline.values())
    paired = [e for e in now if e in old and now[e] and old[e]]
    pairing = Pairing.of(now, old, paired)
    if not paired:
        return pairing, "no baseline comparison: no example id matches the baseline"
    counts = [len(now[e]) for e in paired] + [len(old[e]) for e in paired]
    if info.kind in ("proportion", "mean"):
        old_m = [float(np.mean(numeric(old[e]))) for e in paired]
        new_m = [float(np.mean(numeric(now[e]))) for e in paired]
        agg = measured.aggregate
        base = float(np.mean(old_m)) if agg == "mean" else float(info.aggregate(old_m))
        paired_text = f"{len(paired)} paired examples, per example (mean of {samples_text(counts)} samples)"
        return pairing, _tested(old_m, new_m, base, replace(resampling, n_resamples=n_resamples(agg)), agg,
                                paired_text, "paired bootstrap over examples", alpha)
    differ = [e for e in paired if len(now[e]) != len(old[e])]
    if differ:
        return replace(pairing, n_paired=0), (
            f"baseline not compared: {len(differ)} of {len(paired)} example(s) have a different number of samples "
            f"than in the baseline ({samples_text([len(now[e]) for e in paired])} now, "
            f"{samples_text([len(old[e]) for e in paired])} before), so examples cannot be paired "
            f"(refresh the baseline if repeats changed on purpose)")
    old_v = [v for e in paired for v in old[e]]
    new_v = [v for e in paired for v in now[e]]
    groups = [e for e in paired for _ in now[e]]
    paired_text = f"{len(paired)} paired examples x {samples_text(counts)} samples, resampled and swapped by example"
    return pairing, _tested(old_v, new_v, float(info.aggregate(old_v)),
                            replace(resampling, n_resamples=N_RESAMPLES_CORPUS, groups=groups), info.aggregate,
                            paired_text, "cluster paired bootstrap", alpha)


def _tested(old: Sequence[Any], new: Sequence[Any], base: float, resampling: Resampling, aggregate: Aggregate,
            paired_text: str, how: str, alpha: float) -> Change:
    """The bootstrap gives the interval of the change; its shifted-null p-values are too small at small n,
    so significance comes from the randomization test (exchangeable pairs under no change)."""
    pc = paired_bootstrap(old, new, aggregate, resampling)
    p = _randomization(old, new, aggregate, resampling, alpha)
    detail = (f"{resampling.confidence:.0%} CI of change {fmt_delta(pc.ci_low)} to {fmt_delta(pc.ci_high)} by {how}; "
              "paired randomization test")
    detectable = None
    if aggregate == "mean" and resampling.groups is None:
        old_a, new_a = numeric(old), numeric(new)
        detectable = for_mean(new_a - old_a, old_a, alpha=alpha)
    return Change(base, pc.delta, p, "paired-permutation", paired_text, detail, detectable)


def _randomization(old: Sequence[Any], new: Sequence[Any], aggregate: Aggregate, resampling: Resampling,
                   alpha: float) -> RandomizationTest:
    """The randomization test; a Monte Carlo p within 3 standard errors of alpha is estimated again with more
    rounds, so a fixed seed does not keep a borderline p on the wrong side of alpha by chance."""
    p = paired_permutation(old, new, aggregate, resampling)
    near = any(abs(q - alpha) < 3 * p.se(q) for q in (p.p_lower, p.p_higher))
    if p.method == "monte-carlo" and near:
        more = replace(resampling, n_resamples=n_resamples_near_alpha(aggregate))
        return paired_permutation(old, new, aggregate, more)
    return p


def _decide(change: Change, pairing: Pairing, gate: Gate, alpha: float) -> Comparison:
    """One-sided p-values for a worsening and an improvement, the tolerance, status and reason text."""
    p_lower, p_higher = change.p.p_lower, change.p.p_higher
    p_worse, p_better = (p_lower, p_higher) if gate.higher_is_better else (p_higher, p_lower)
    worsening = -change.delta if gate.higher_is_better else change.delta  # > 0: moved in the worse direction
    worse = "a drop" if gate.higher_is_better else "an increase"
    shown, direction = (p_worse, worse) if worsening >= 0 else (p_better, "an improvement")
    p_text = fmt_p_test(shown, change.p.method, change.p.se(shown), change.p.rounds)
    text = (f"vs baseline {fmt(change.baseline)} on {change.paired_text}: change {fmt_delta(change.delta)} "
            f"({change.detail} one-sided {p_text} for {direction}")
    status: Status = "unchanged"
    tolerance, name = gate.tolerance, gate.tolerance_name
    if not gate.gated:
        text += _ungated(worsening, p_worse, p_better, gate, alpha)
    elif worsening > 0 and p_worse < alpha and tolerance is not None and worsening <= tolerance:
        text += f") - significant at alpha {alpha:g} but within {name} {fmt(tolerance)}"
    elif worsening > 0 and p_worse < alpha:
        status = "regression"
        beyond = f", beyond {name} {fmt(tolerance)}" if tolerance is not None else ""
        text += f") - REGRESSION: significant at alpha {alpha:g}{beyond}"
    elif worsening < 0 and p_better < alpha:
        status = "improved"
        text += f") - improved: significant at alpha {alpha:g}; consider refreshing the baseline"
    else:
        text += f") - not significant at alpha {alpha:g}"
    se = change.p.se(p_worse) if change.p.method == "monte-carlo" else None
    return Comparison(status, text + pairing.unmatched, pairing, change.baseline, change.delta, p_worse, p_better,
                      change.p.method, se, change.test, change.detectable if gate.gated else None)


def _ungated(worsening: float, p_worse: float, p_better: float, gate: Gate, alpha: float) -> str:
    """A machine metric (latency, tokens) never fails the item, but a significant change is said, with how to gate it."""
    name = "max_drop" if gate.higher_is_better else "max_increase"
    how = f"it measures the machine more than the model; set {name} to gate it"
    if worsening > 0 and p_worse < alpha:
        return f") - {'a drop' if gate.higher_is_better else 'an increase'}, significant at alpha {alpha:g}, " \
               f"but not gated: {how}"
    if worsening < 0 and p_better < alpha:
        return f") - an improvement, significant at alpha {alpha:g}, but not gated: {how}"
    return f") - not significant at alpha {alpha:g}, and not gated: {how}"


def _samples(keys: Iterable[str], values: Iterable[Any]) -> dict[str, list[Any]]:
    """Example id -> its measured (not None) sample values, in key order; every example id is listed."""
    out: dict[str, list[Any]] = {}
    for key, value in zip(keys, values):
        samples = out.setdefault(example_id(key), [])
        if value is not None:
            samples.append(value)
    return out
