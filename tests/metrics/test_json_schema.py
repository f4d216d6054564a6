"""``json_schema``: the share of answers that are JSON valid against a schema."""

from __future__ import annotations

import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricParamError
from evalsuite.metrics import get_metric
from evalsuite.records import Answer, Example, Scored

REVIEW = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}},
          "required": ["sentiment"], "additionalProperties": False}


def item(text: str | None, error: str | None = None) -> Scored:
    return Scored(Example("e", {}, None), Answer("e", 0, text=text, error=error), "h")


def test_the_whole_answer_must_be_json_valid_against_the_schema() -> None:
    metric = get_metric("json_schema", MetricSpec(params={"schema": REVIEW}))
    answers = ['{"sentiment": "positive"}', ' {"sentiment": "negative"}\n', '{"sentiment": "great"}',
               '{"sentiment": "positive", "why": "fun"}', 'Sure! {"sentiment": "positive"}', None,
               '{"sentiment": "positive"}']
    scored = [item(text) for text in answers[:-1]] + [item(answers[-1], error="HTTP 500")]
    assert metric.score(scored) == [1, 1, 0, 0, 0, 0, 0]
    assert metric.kind == "proportion" and "jsonschema" in metric.definition


def test_a_missing_or_invalid_schema_is_a_parameter_error_with_the_fix() -> None:
    with pytest.raises(MetricParamError, match=r"no schema to check answers against; set model.response_format"):
        get_metric("json_schema", MetricSpec())
    with pytest.raises(MetricParamError, match="json_schema: schema: not a valid JSON Schema at required"):
        get_metric("json_schema", MetricSpec(params={"schema": {"type": "object", "required": "sentiment"}}))
