"""Build the ``Scored`` answers metrics take, without a model call."""

from __future__ import annotations

from typing import Any

from evalsuite.records import Answer, Example, Scored


def scored(prediction: Any, expected: Any, *, parsed: bool = True, text: str | None = None, example_id: str = "e",
           **answer: Any) -> Scored:
    """One parsed answer; ``text`` (the raw answer) defaults to the prediction when it is a string."""
    text = text if text is not None else (prediction if isinstance(prediction, str) else None)
    return Scored(
        example=Example(id=example_id, fields={}, expected=expected),
        answer=Answer(example_id, 0, text=text, **answer),
        prompt_hash="h",
        prediction=prediction if parsed else None,
        parsed=parsed,
    )


def value_of(name: str, items: list[Scored], **params: Any) -> float:
    """The aggregate of registered metric ``name`` with ``params`` over ``items``."""
    from evalsuite.cases.schema import MetricSpec
    from evalsuite.metrics import get_metric

    metric = get_metric(name, MetricSpec(params=params))
    return metric.aggregate(metric.score(items))
