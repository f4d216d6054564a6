"""Per-example values as the verdict steps read them: floats with NaN for "not measured", and sample keys."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evalsuite.records import SampleKey
from evalsuite.verdict.stats import Aggregate

if TYPE_CHECKING:
    from evalsuite.metrics import MetricInfo

# The generic (per-resample Python call) bootstrap is slower; corpus metrics get fewer resamples.
N_RESAMPLES_MEAN = 2000
N_RESAMPLES_CORPUS = 1000


def n_resamples(aggregate: Aggregate) -> int:
    return N_RESAMPLES_MEAN if aggregate == "mean" else N_RESAMPLES_CORPUS


def numeric(values: Sequence[Any]) -> np.ndarray:
    """Per-example values as floats; None (no value for that example) becomes NaN."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def is_binary(arr: np.ndarray) -> bool:
    finite = arr[~np.isnan(arr)]
    return bool(np.all((finite == 0.0) | (finite == 1.0)))


def example_id(key: str) -> str:
    """``"<example_id>#<sample>"`` -> example id (ids may themselves contain '#')."""
    return SampleKey.parse(key).example_id


def has_repeats(keys: Iterable[str]) -> bool:
    """True when some example id appears with more than one sample."""
    seen: set[str] = set()
    for key in keys:
        eid = example_id(key)
        if eid in seen:
            return True
        seen.add(eid)
    return False


def samples_text(counts: Sequence[int]) -> str:
    lo, hi = min(counts), max(counts)
    return f"{hi}" if lo == hi else f"{lo}-{hi}"


def resampled_aggregate(info: MetricInfo, arr: np.ndarray | None, value: float) -> Aggregate:
    """What the bootstrap resamples: the vectorised mean when the metric's aggregate is the mean of its
    values (0/1 proportions, or checked against the value), else the metric's own aggregate."""
    if arr is None:
        return info.aggregate
    if info.kind == "proportion" and is_binary(arr):
        return "mean"
    finite = arr[~np.isnan(arr)]
    if finite.size and math.isclose(value, float(finite.mean()), rel_tol=1e-9, abs_tol=1e-12):
        return "mean"
    return info.aggregate


def n_resamples_near_alpha(aggregate: Aggregate) -> int:
    """Rounds for a Monte Carlo p-value within a few standard errors of alpha: 10x, 4x for a costly aggregate."""
    return 10 * N_RESAMPLES_MEAN if aggregate == "mean" else 4 * N_RESAMPLES_CORPUS
