"""Operational metrics read from the answers: latency percentiles and token counts.

They have no notion of right or wrong, so unparsed answers count like any other; an errored answer has
no measurement (``None``) and is left out of the aggregate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from evalsuite.metrics._base import Metric
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored


@metric("latency_p50", percentile=50)
@metric("latency_p95", percentile=95)
class Latency(Metric):
    kind = "corpus"
    higher_is_better = False
    gated_by_default = False  # a loaded machine is not a regression
    percentile = 50

    def describe(self) -> str:
        return (
            f"p{self.percentile} of per-call latency in seconds, numpy.percentile(method='linear'); live wall time "
            "of the request, the recorded value on replay; errored calls excluded"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [s.answer.latency_s if s.answer.ok else None for s in scored]

    def aggregate(self, values: Sequence[Any]) -> float:
        measured = [v for v in values if v is not None]
        return float(np.percentile(measured, self.percentile, method="linear")) if measured else math.nan


@metric("prompt_tokens", field="prompt_tokens")
@metric("completion_tokens", field="completion_tokens")
class Tokens(Metric):
    kind = "mean"
    higher_is_better = False
    gated_by_default = False
    field = ""

    def describe(self) -> str:
        return f"mean {self.field.replace('_', ' ')} per call, as reported by the endpoint's usage; errored calls excluded"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [getattr(s.answer, self.field) if s.answer.ok else None for s in scored]
