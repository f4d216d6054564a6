"""The metric base types: ``Metric`` (what a case's metric is) and ``MetricInfo`` (what the verdict takes).

Why two: the verdict judges live metrics and metrics rebuilt from a stored report alike, so it takes the
small frozen ``MetricInfo`` that both can give, never a whole ``Metric``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from evalsuite.records import Scored

Kind = Literal["proportion", "mean", "corpus"]
REQUIRED: Any = object()  # a default that makes a parameter mandatory: ``defaults = {"pattern": REQUIRED}``


@dataclass(frozen=True)
class MetricInfo:
    """What the verdict needs of a metric, and all a stored report can give back: the one metric type
    that ``verdict.judge`` takes (from a live ``Metric.info()``, or rebuilt from report.json / a baseline)."""

    name: str
    kind: Kind
    higher_is_better: bool
    definition: str
    aggregate: Callable[[Sequence[Any]], float]
    # Optional: the aggregate of every row of an int matrix [resamples, n] of indices at once. Corpus metrics with a
    # costly aggregate (sklearn F1 at n = 25,000 costs ~70 ms a call; a gated metric needs ~3,000) provide it.
    aggregate_resamples: Callable[[Sequence[Any], np.ndarray], np.ndarray] | None = None
    # False: measures the machine more than the model (latency, tokens): compared with the baseline, and only gated
    # when the case sets max_increase or max_drop.
    gated_by_default: bool = True


class Metric:
    """One metric: per-example values from a batch of scored answers, and an aggregate over them.

    Subclasses declare ``kind``, ``higher_is_better``, ``needs_logprobs``, their parameters with defaults in
    ``defaults`` (``choices`` restricts string values; a default of ``REQUIRED`` makes a parameter mandatory)
    and build ``definition`` (a sentence a report reader can check the number against). ``kind`` may be
    settled per instance (by ``__init__`` or ``score``) when it depends on the parameters or on the values.
    """

    name: ClassVar[str] = ""
    kind: Kind
    higher_is_better: ClassVar[bool] = True
    needs_logprobs: ClassVar[bool] = False
    gated_by_default: ClassVar[bool] = True
    # Read by the case loader to refuse silent mistakes: a metric comparing with ``expected`` when no column is
    # mapped, one comparing parsed labels when the case has no ``parse:``, a threshold the metric cannot reach.
    needs_expected: ClassVar[bool] = False
    needs_parser: ClassVar[bool] = False
    value_range: ClassVar[tuple[float, float] | None] = None  # the values it can take, when bounded
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.definition = self.describe()

    def describe(self) -> str:
        raise NotImplementedError

    def bounds(self) -> tuple[float, float] | None:
        """The values the metric can take: 0..1 for a proportion, else ``value_range`` (None when unbounded)."""
        return (0.0, 1.0) if self.kind == "proportion" else self.value_range

    def setting_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Settings that validate but are likely mistakes, as (key path under the metric's key, message): each
        becomes a ``CaseFileWarning`` at that key's line when the case file loads."""
        return []

    def info(self) -> MetricInfo:
        return MetricInfo(self.name, self.kind, self.higher_is_better, self.definition, self.aggregate,
                          getattr(self, "aggregate_resamples", None), self.gated_by_default)

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        raise NotImplementedError

    def aggregate(self, values: Sequence[Any]) -> float:
        """Default for proportion and mean metrics: the mean of the measured values (``None`` = not measured)."""
        measured = [float(v) for v in values if v is not None]
        return math.fsum(measured) / len(measured) if measured else math.nan


class SummedStats(Metric):
    """A corpus metric whose per-example values are count vectors and whose score is a formula of their sum.

    ``aggregate_resamples`` lets the bootstrap sum each resample's vectors with numpy instead of calling
    ``aggregate`` a thousand times on Python lists. ``None`` (not measured) contributes nothing.
    """

    kind = "corpus"

    def from_totals(self, totals: list[float]) -> float:
        raise NotImplementedError

    def aggregate(self, values: Sequence[Any]) -> float:
        measured = [v for v in values if v is not None]
        return self.from_totals([sum(column) for column in zip(*measured)]) if measured else math.nan

    def aggregate_resamples(self, values: Sequence[Any], idx: np.ndarray) -> np.ndarray:
        width = len(next(v for v in values if v is not None))
        stats = np.array([[0] * width if v is None else v for v in values])
        return np.array([self.from_totals(stats[row].sum(axis=0).tolist()) for row in idx], dtype=float)
