"""Perplexity of the model's own answer, from the token logprobs the endpoint returned.

Why corpus-level: a mean of per-example perplexities is dominated by short answers with one unlikely
token; exp of the negative mean logprob over all answer tokens weighs every token once (as lm-eval-harness
and Inspect do). Each example stores (sum of logprobs, token count) so any subset can be re-aggregated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evalsuite.errors import MetricError
from evalsuite.metrics._base import SummedStats
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored


@metric("perplexity")
class Perplexity(SummedStats):
    higher_is_better = False
    needs_logprobs = True

    def describe(self) -> str:
        return (
            "perplexity of the answers: exp(-(sum of response-token logprobs) / (number of response tokens)) over "
            "all examples together (corpus level, not a mean of per-example perplexities); per example "
            "[sum_logprob, n_tokens]; errored answers are not measured"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        values: list[Any] = []
        for s in scored:
            if not s.answer.ok:
                values.append(None)
            elif s.answer.token_logprobs is None:
                raise MetricError(
                    f"perplexity needs token logprobs, but the answer for example {s.example.id!r} has none: set "
                    "`model.logprobs: true` in the case (and use an endpoint that returns logprobs), or drop perplexity"
                )
            else:
                values.append([math.fsum(s.answer.token_logprobs), len(s.answer.token_logprobs)])
        return values

    def from_totals(self, totals: list[float]) -> float:
        logprob, tokens = totals
        return math.exp(-logprob / tokens) if tokens else math.nan
