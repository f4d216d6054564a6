"""Latency percentiles and token means."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import get_metric
from tests._support.scored import scored, value_of


def test_latency_percentiles_and_token_means():
    latencies = [0.2, 1.5, 0.4, 0.9, 3.0, 0.7, 0.3]
    items = [scored("x", None, latency_s=s, prompt_tokens=10 + i, completion_tokens=2 * i) for i, s in enumerate(latencies)]
    items.append(scored(None, None, parsed=False, error="x", latency_s=60.0))
    assert value_of("latency_p50", items) == pytest.approx(np.percentile(latencies, 50))
    assert value_of("latency_p95", items) == pytest.approx(np.percentile(latencies, 95, method="linear"))
    assert value_of("prompt_tokens", items) == pytest.approx(13.0)
    assert value_of("completion_tokens", items) == pytest.approx(6.0)
    assert not get_metric("latency_p95", MetricSpec()).higher_is_better
