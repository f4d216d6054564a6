"""Verdict step 1: the metric's value on this run and its confidence interval.

0/1 proportions get the Wilson interval, everything else a percentile bootstrap. With repeats (several
samples per example, keys ``"<example_id>#<sample>"``) the samples of one example are correlated, so the
example is the unit: a cluster bootstrap resamples examples and keeps all their samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from evalsuite.verdict._values import (example_id, has_repeats, is_binary, n_resamples, numeric, resampled_aggregate,
                                       samples_text)
from evalsuite.verdict.format import fmt
from evalsuite.verdict.stats import Aggregate, Resampling, bootstrap_ci, wilson

if TYPE_CHECKING:
    from evalsuite.metrics import MetricInfo


@dataclass(frozen=True)
class Interval:
    value: float
    n: int  # values measured (not None)
    low: float | None
    high: float | None
    method: str  # "wilson" | "bootstrap" | "cluster-bootstrap"
    aggregate: Aggregate  # what was resampled; the baseline comparison resamples the same
    confidence: float
    shape: str  # " on n=40 (8 examples x 5 samples)"

    @property
    def repeats(self) -> bool:
        return self.method == "cluster-bootstrap"

    def text(self, name: str) -> str:
        ci = "" if self.low is None or self.high is None else (
            f" ({self.confidence:.0%} CI {fmt(self.low)}-{fmt(self.high)}, {self.method})")
        return f"{name} = {fmt(self.value)}{ci}{self.shape}"


@dataclass(frozen=True)
class Undefined:
    """No value to judge: nothing was measured, or the aggregate is not a finite number."""

    n: int
    reason: str


def interval(
    info: MetricInfo, values: Sequence[Any], keys: Sequence[str], resampling: Resampling,
) -> Interval | Undefined:
    """The metric's own aggregate of the measured values, and its interval (``Undefined`` if there is none)."""
    arr = numeric(values) if info.kind in ("proportion", "mean") else None
    measured = ~np.isnan(arr) if arr is not None else np.ones(len(values), dtype=bool)
    n = int(np.count_nonzero(measured))
    if n == 0:
        return Undefined(0, f"{info.name}: no example produced a value (all calls failed or were skipped)")
    present = [v for v in values if v is not None] if arr is not None else list(values)
    value = info.aggregate(present)
    if value is None or not math.isfinite(float(value)):
        return Undefined(n, f"{info.name}: the aggregate is undefined ({value}) on {n} examples")
    value = float(value)
    aggregate = resampled_aggregate(info, arr, value)
    confidence = resampling.confidence
    if has_repeats(keys):
        groups = [e for e, ok in zip(map(example_id, keys), measured) if ok]
        counts = list(Counter(groups).values())
        shape = f" on n={n} ({len(counts)} examples x {samples_text(counts)} samples)"
        method = "cluster-bootstrap"
    elif arr is not None and info.kind == "proportion" and is_binary(arr):
        finite = arr[measured]
        low, high = wilson(int(finite.sum()), finite.size, confidence)
        return Interval(value, n, low, high, "wilson", aggregate, confidence, f" on n={n}")
    else:
        groups, shape, method = None, f" on n={n}", "bootstrap"
    data = arr[measured] if arr is not None and aggregate == "mean" else present
    lo, hi = bootstrap_ci(data, aggregate, replace(resampling, n_resamples=n_resamples(aggregate), groups=groups))
    return Interval(value, n, None if math.isnan(lo) else lo, None if math.isnan(hi) else hi, method, aggregate,
                    confidence, shape)
