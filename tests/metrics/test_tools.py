"""Tool-call metrics: the expected tool called, with matching arguments (subset, exact, schema), or no tool."""

from __future__ import annotations

from typing import Any

import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricError, MetricParamError
from evalsuite.metrics import get_metric
from evalsuite.records import Answer, Example, Scored

PARIS = ("get_weather", '{"city": "Paris", "unit": "celsius"}')


def item(expected: Any, *calls: tuple[str, str], text: str | None = None, error: str | None = None) -> Scored:
    answer = Answer("e", 0, text=text, error=error,
                    tool_calls=[{"name": name, "arguments": arguments} for name, arguments in calls] or None)
    return Scored(Example("e", {}, expected), answer, "h")


def values(metric_name: str, items: list[Scored], **params: Any) -> list[Any]:
    metric = get_metric(metric_name, MetricSpec(params=params))
    assert metric.kind == "proportion" and metric.definition
    return metric.score(items)


def test_tool_called_checks_the_expected_name_among_every_call_of_the_answer() -> None:
    items = [item("get_weather", ("get_time", "{}"), PARIS),  # several calls in one turn: any of them
             item({"name": "get_weather", "arguments": {}}, ("get_time", "{}")),
             item(["get_time", "get_weather"], PARIS),  # a list: alternative expectations
             item("get_weather", text="It is sunny."),
             item("get_weather", PARIS, error="HTTP 500")]
    assert values("tool_called", items) == [1, 0, 1, 0, 0]
    assert values("tool_called", [item(None, ("anything", "{}")), item(None, text="no")]) == [1, 0]  # any tool
    assert values("tool_called", [item("get_time", PARIS)], name="get_weather") == [1]  # the parameter wins


def test_no_tool_call_passes_answers_in_text_only() -> None:
    assert values("no_tool_call", [item(None, text="sunny"), item(None, PARIS), item(None, error="timeout")]) == [1, 0, 0]


@pytest.mark.parametrize(("match", "expected_arguments", "passes"), [
    ("subset", {"city": "Paris"}, True),
    ("subset", {"city": "paris"}, False),
    ("subset", {"city": "Paris", "country": None}, True),  # null: absent (datasets pads missing keys with null)
    ("exact", {"city": "Paris"}, False),
    ("exact", {"city": "Paris", "unit": "celsius"}, True),
    ("exact", '{"unit": "celsius", "city": "Paris"}', True),  # JSON text in the dataset
    ("schema", {"type": "object", "properties": {"city": {"pattern": "^Paris"}}, "required": ["city"]}, True),
    ("schema", {"type": "object", "required": ["country"]}, False),
])
def test_arguments_match_subset_exact_or_schema(match: str, expected_arguments: Any, passes: bool) -> None:
    expected = {"name": "get_weather", "arguments": expected_arguments}
    assert values("tool_args_match", [item(expected, ("get_time", "{}"), PARIS)], match=match) == [int(passes)]


def test_arguments_of_another_tool_or_not_json_never_match() -> None:
    expected = {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert values("tool_args_match", [item(expected, ("get_time", '{"city": "Paris"}')),
                                      item(expected, ("get_weather", '{"city": "Paris"')),
                                      item(expected, ("get_weather", '"Paris"'))]) == [0, 0, 0]
    # the same expectation for every example, from the parameters
    assert values("tool_args_match", [item(None, PARIS)], name="get_weather", arguments={"city": "Paris"}) == [1]
    assert values("tool_args_match", [item(None, ("get_weather", '{"flag": 1}'))], arguments={"flag": True}) == [0]


def test_missing_or_unusable_expectations_are_errors_naming_the_example_and_the_fix() -> None:
    with pytest.raises(MetricError, match="example 'e' expects no arguments to compare with; give expected as"):
        values("tool_args_match", [item("get_weather", PARIS)])
    with pytest.raises(MetricError, match="expected 3 is neither a tool name nor"):
        values("tool_called", [item(3, PARIS)])
    with pytest.raises(MetricError, match="expected arguments: not a valid JSON Schema"):
        values("tool_args_match", [item({"arguments": {"type": "objekt"}}, PARIS)], match="schema")
    with pytest.raises(MetricParamError, match="match must be one of subset, exact, schema"):
        get_metric("tool_args_match", MetricSpec(params={"match": "fuzzy"}))
    with pytest.raises(MetricParamError, match="match schema: arguments: not a valid JSON Schema"):
        get_metric("tool_args_match", MetricSpec(params={"match": "schema", "arguments": {"type": 5}}))
