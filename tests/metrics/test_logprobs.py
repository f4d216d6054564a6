"""Perplexity from the answers' token logprobs."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricError
from evalsuite.metrics import get_metric
from tests._support.scored import scored


def test_perplexity_is_corpus_level():
    logprobs = [[-0.1, -2.0], [-0.5, -0.5, -0.5, -0.2], [-3.0]]
    items = [scored("x", None, token_logprobs=lp) for lp in logprobs]
    items.append(scored(None, None, parsed=False, error="timeout", error_kind="timeout"))
    metric = get_metric("perplexity", MetricSpec())
    values = metric.score(items)
    assert values[-1] is None  # errored: not measured
    flat = [x for lp in logprobs for x in lp]
    assert metric.aggregate(values) == pytest.approx(float(np.exp(-np.mean(flat))))
    assert metric.needs_logprobs and not metric.higher_is_better


def test_perplexity_without_logprobs_tells_the_user_what_to_set():
    with pytest.raises(MetricError, match=r"model\.logprobs: true"):
        get_metric("perplexity", MetricSpec()).score([scored("x", None)])
