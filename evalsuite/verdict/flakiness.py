"""Measured flakiness: how likely an item's pass/fail verdict flips on a re-run, from its repeated samples.

Why: agreement says how often an example's samples agree, not whether that moves the verdict. Many split
examples may never move an item that sits far above its threshold; two may flip one that sits on it. With
``repeats`` samples per example, a re-run is simulated by resampling each example's samples with replacement
(a bootstrap over samples, examples fixed), recomputing every thresholded metric's aggregate and the item's
threshold verdict; flakiness is the share of draws whose verdict differs from the observed one. The baseline
gate is not re-run per draw: its p-value already states its own uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.verdict._agreement import least_agreeing
from evalsuite.verdict._thresholds import missed
from evalsuite.verdict._values import example_id, numeric, resampled_aggregate

if TYPE_CHECKING:
    from evalsuite.metrics import MetricInfo

DRAWS = 200
MAX_FLAKY_EXAMPLES = 10


@dataclass(frozen=True)
class Flakiness:
    probability: float | None  # None: no example has several samples, or no metric has a threshold
    examples: list[str]  # example ids whose samples agree least, most flipping first


def flakiness(
    metrics: Sequence[tuple[MetricInfo, MetricSpec, Sequence[Any]]], keys: Sequence[str],
    predictions: Iterable[tuple[str, Any]], *, seed: int = 0, draws: int = DRAWS,
) -> Flakiness:
    """``metrics``: (metric, its spec, per-sample values aligned with ``keys``) for every metric of the item;
    ``predictions``: (example id, prediction) per sample, for the examples that flip most."""
    examples = least_agreeing(predictions, MAX_FLAKY_EXAMPLES)
    members = _members(keys)
    thresholded = [(info, spec, values) for info, spec, values in metrics
                   if spec.min is not None or spec.max is not None]
    if not thresholded or all(m.size < 2 for m in members):
        return Flakiness(None, examples)
    idx = _resampled_indices(members, len(keys), np.random.default_rng(seed), draws)
    observed = np.ones(1, dtype=bool)
    passes = np.ones(draws, dtype=bool)
    for info, spec, values in thresholded:
        observed &= _meets(_aggregates(info, values, np.arange(len(keys))[None, :]), spec)
        passes &= _meets(_aggregates(info, values, idx), spec)
    return Flakiness(float(np.mean(passes != observed[0])), examples)


def _members(keys: Sequence[str]) -> list[np.ndarray]:
    """Positions of each example's samples in ``keys``."""
    by_example: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_example.setdefault(example_id(key), []).append(i)
    return [np.array(positions) for positions in by_example.values()]


def _resampled_indices(members: list[np.ndarray], m: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """[draws, m] sample positions: each example's samples drawn with replacement from its own samples."""
    idx = np.empty((draws, m), dtype=np.int64)
    for positions in members:
        idx[:, positions] = positions[rng.integers(0, positions.size, size=(draws, positions.size))]
    return idx


def _aggregates(info: MetricInfo, values: Sequence[Any], idx: np.ndarray) -> np.ndarray:
    """The metric's aggregate of each row of ``idx`` (None values are not measured and left out); the vectorised
    mean where the metric's aggregate is the mean of its values, as the interval decides."""
    arr = numeric(values) if info.kind in ("proportion", "mean") else None
    present = [v for v in values if v is not None]
    if arr is not None and present and resampled_aggregate(info, arr, float(info.aggregate(present))) == "mean":
        drawn = arr[idx]
        counts = np.count_nonzero(~np.isnan(drawn), axis=1)
        return np.divide(np.nansum(drawn, axis=1), counts, out=np.full(idx.shape[0], np.nan), where=counts > 0)
    if info.aggregate_resamples is not None:
        return np.asarray(info.aggregate_resamples(values, idx), dtype=float)
    return np.array([info.aggregate([values[i] for i in row if values[i] is not None]) for row in idx], dtype=float)


def _meets(aggregates: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Per row: the value meets the spec's thresholds (an undefined value does not)."""
    return np.array([not math.isnan(value) and not missed(float(value), spec) for value in aggregates], dtype=bool)
