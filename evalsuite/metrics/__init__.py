"""Stage 6: per-example scores and aggregates.

``get_metric(name, spec)`` builds the metric a case names: a built-in, one registered with
``@metric("name")`` (in a ``conftest.py`` or an installed package's ``evalsuite.metrics`` entry point),
a case's ``python:`` file, or a Hugging Face ``evaluate:`` module. ``names()`` lists the registered ones.
"""

from evalsuite.metrics import (  # noqa: F401  (registers the built-ins)
    _classification,
    _json_schema,
    _logprobs,
    _similarity,
    _text,
    _tools,
    _usage,
)
from evalsuite.metrics._base import REQUIRED, Kind, Metric, MetricInfo
from evalsuite.metrics._registry import get_metric, metric, names

__all__ = ["REQUIRED", "Kind", "Metric", "MetricInfo", "get_metric", "metric", "names"]
