"""Verdict step 2: does the value meet the case's ``min``/``max``, and can the interval tell?"""

from __future__ import annotations

from dataclasses import dataclass

from evalsuite.cases.schema import MetricSpec
from evalsuite.verdict._interval import Interval
from evalsuite.verdict.format import fmt


@dataclass(frozen=True)
class ThresholdCheck:
    missed: tuple[str, ...]  # e.g. ("below min 0.800",)
    text: str  # the reason's clause; "" when the case sets no threshold

    @property
    def failed(self) -> bool:
        return bool(self.missed)


def missed(value: float, spec: MetricSpec) -> tuple[str, ...]:
    """The thresholds ``value`` misses, e.g. ("below min 0.800",); also what flakiness re-checks per draw."""
    out: list[str] = []
    if spec.min is not None and value < spec.min:
        out.append(f"below min {fmt(spec.min)}")
    if spec.max is not None and value > spec.max:
        out.append(f"above max {fmt(spec.max)}")
    return tuple(out)


def thresholds(measured: Interval, spec: MetricSpec) -> ThresholdCheck:
    misses = missed(measured.value, spec)
    if misses:
        text = "FAILS threshold: " + " and ".join(misses) + _straddle_note(measured, spec)
        return ThresholdCheck(misses, text)
    bounds = [f"{name} {fmt(bound)}" for name, bound in (("min", spec.min), ("max", spec.max)) if bound is not None]
    return ThresholdCheck((), "meets " + " and ".join(bounds) + _straddle_note(measured, spec) if bounds else "")


def _straddle_note(measured: Interval, spec: MetricSpec) -> str:
    """Say so when the interval contains a threshold: the pass/fail may flip with more examples."""
    if measured.low is None or measured.high is None:
        return ""
    for bound in (spec.min, spec.max):
        if bound is not None and measured.low <= bound <= measured.high:
            return f" (the {measured.confidence:.0%} CI contains {fmt(bound)}: too few examples to be sure)"
    return ""
