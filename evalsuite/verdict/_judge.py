"""Stage 7: turn one metric's per-example values into a verdict a reviewer can act on.

Two questions, answered separately: does the value meet the case's thresholds, and did it change against
the committed baseline by more than noise? A third says how far the second can see: the smallest drop the
gate detects at this n. Each step returns a small value (``Interval``,
``ThresholdCheck``, ``Comparison``) and ``judge`` only composes them, so each step is tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from evalsuite.cases.schema import MetricSpec
from evalsuite.records import MetricResult
from evalsuite.verdict._compare import Comparison, Gate, compare
from evalsuite.verdict._interval import Interval, Undefined, interval
from evalsuite.verdict._power import Detectable, for_proportion
from evalsuite.verdict._thresholds import thresholds
from evalsuite.verdict.stats import Resampling

if TYPE_CHECKING:
    from evalsuite.metrics import MetricInfo

Verdict = Literal["pass", "fail", "regression", "improved", "unchanged", "error"]


def judge(
    info: MetricInfo, spec: MetricSpec | None, values: Sequence[Any], keys: Sequence[str],
    baseline: Mapping[str, Any] | None = None, *, alpha: float = 0.05, seed: int = 0, confidence: float = 0.95,
) -> MetricResult:
    """Aggregate, interval, threshold check, baseline comparison and detectable drop for one metric of one item.

    ``values[i]`` belongs to ``keys[i]`` (``"<example_id>#<sample>"``); ``baseline`` maps the same
    keys to the baseline run's per-example values (None: no baseline for this item/metric).
    """
    if len(values) != len(keys):
        raise ValueError(f"{info.name}: {len(values)} values but {len(keys)} keys")
    spec = spec or MetricSpec()
    result = MetricResult(name=info.name, kind=info.kind, value=None, n=0, min=spec.min, max=spec.max,
                          max_drop=spec.max_drop, max_increase=spec.max_increase,
                          higher_is_better=info.higher_is_better, definition=info.definition)
    resampling = Resampling(seed=seed, confidence=confidence, batched=info.aggregate_resamples)
    measured = interval(info, values, keys, resampling)
    if isinstance(measured, Undefined):
        return replace(result, n=measured.n, verdict="error", reason=measured.reason)
    check = thresholds(measured, spec)
    comparison = None if baseline is None else compare(info, spec, measured, values, keys, baseline,
                                                       alpha=alpha, resampling=resampling)
    status = comparison.status if comparison else None
    verdict: Verdict = "fail" if check.failed else status or "pass"
    detectable = _detectable(info, measured, comparison, alpha)
    parts = [measured.text(info.name), check.text, comparison.text if comparison else "",
             detectable.text(Gate.of(info, spec).worse) if detectable else ""]
    return replace(result, value=measured.value, n=measured.n, ci_low=measured.low, ci_high=measured.high,
                   interval=measured.method, verdict=verdict, reason="; ".join(p for p in parts if p),
                   mde=detectable.drop if detectable else None, **(comparison.fields() if comparison else {}))


def _detectable(info: MetricInfo, measured: Interval, comparison: Comparison | None, alpha: float) -> Detectable | None:
    """The gate's minimum detectable worsening: from the paired comparison when there is one, else (0/1
    proportions) from n alone; none for a metric that is not gated or has no formula (corpus metrics)."""
    if comparison is not None and comparison.status is not None:
        return comparison.detectable
    if info.gated_by_default and measured.method == "wilson":
        return for_proportion(measured.n, measured.value, None, alpha=alpha, higher_is_better=info.higher_is_better)
    return None
