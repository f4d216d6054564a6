"""Stage 6: per-example scores and aggregates.

``get_metric(name, spec)`` builds a registered metric; ``names()`` lists them. Metrics register themselves
with ``@metric("name")`` in the modules imported below.
"""

from evalsuite.metrics import classification, logprobs, text, usage  # noqa: F401  (registers the metrics)
from evalsuite.metrics.registry import (
    Metric,
    MetricInfo,
    MetricError,
    MetricParamError,
    UnknownName,
    get_metric,
    metric,
    names,
)

__all__ = ["Metric", "MetricInfo", "MetricError", "MetricParamError", "UnknownName", "get_metric", "metric", "names"]
