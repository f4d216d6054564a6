"""Tool-call metrics: did the model call the expected tool, with the expected arguments, or no tool at all.

What is expected of an example comes from ``expected`` (the dataset's reference column) or, the same for every
example, from the metric's parameters: a tool name (``"get_weather"``), or ``{"name": ..., "arguments": ...}``
whose arguments are a JSON object or its text; a list accepts any of its elements (alternative calls). An
answer passes when any of its calls meets the expectation (a model may call several tools in one turn).

Arguments are compared ``subset`` (every expected key is there with an equal value, recursively; extra keys are
fine), ``exact`` (equal objects) or ``schema`` (the expectation is a JSON Schema the arguments must be valid
against). An expected null is what ``datasets`` fills the keys one JSONL row lacks with, so it cannot mean "must be
null": ``subset`` ignores it (like any key the row does not name), ``exact`` requires the key absent or null.
Arguments that are not a JSON object never match.
Every metric is a proportion (Wilson interval, McNemar against a baseline); an errored answer counts as a fail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evalsuite._util.json_schemas import check_schema, schema_error
from evalsuite.errors import MetricError, MetricParamError
from evalsuite.metrics._base import Metric
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored

MATCHES = ("subset", "exact", "schema")


def expectations(item: Scored, name: str | None, arguments: Any) -> list[dict[str, Any]]:
    """What is acceptable for this example, as ``[{"name": str | None, "arguments": value | None}]``;
    the parameters (the same for every example) win over ``expected``."""
    expected = item.example.expected
    listed = expected if isinstance(expected, (list, tuple)) else [expected]
    found = []
    for entry in listed:
        if isinstance(entry, str):
            entry = {"name": entry}
        elif entry is None:
            entry = {}
        elif not isinstance(entry, dict):
            raise MetricError(f"example {item.example.id!r}: expected {entry!r} is neither a tool name nor "
                              '{"name": ..., "arguments": {...}}; fix the dataset\'s expected column')
        found.append({"name": name if name is not None else entry.get("name"),
                      "arguments": arguments if arguments is not None else entry.get("arguments")})
    return found


def decoded(arguments: str) -> dict[str, Any] | None:
    """The JSON object a model wrote as a call's arguments; None when it is not one."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def without_nulls(value: Any) -> Any:
    """Mappings with their null entries dropped, at every depth (how ``datasets`` pads missing keys)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def is_subset(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with a matching value; lists match element by element."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and is_subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(is_subset, expected, actual))
    return bool(expected == actual) and isinstance(expected, bool) == isinstance(actual, bool)  # True != 1 here


class _ToolMetric(Metric):
    kind = "proportion"
    defaults = {"name": None}

    def calls(self, item: Scored) -> list[dict[str, str]]:
        return item.answer.tool_calls or [] if item.answer.ok else []


@metric("tool_called")
class ToolCalled(_ToolMetric):
    def describe(self) -> str:
        tool = f"the tool {self.params['name']!r}" if self.params["name"] else "the expected tool (expected: a name, " \
               "or {name, arguments}; any tool when there is none)"
        return f"share of answers that called {tool}; errored = not called"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        values = []
        for item in scored:
            names = {call["name"] for call in self.calls(item)}
            wanted = [e["name"] for e in expectations(item, self.params["name"], None)]
            values.append(int(bool(names) and any(w is None or w in names for w in wanted)))
        return values


@metric("no_tool_call")
class NoToolCall(Metric):
    kind = "proportion"

    def describe(self) -> str:
        return "share of answers that called no tool (answered in text); errored = wrong"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [int(item.answer.ok and not item.answer.tool_calls) for item in scored]


@metric("tool_args_match")
class ToolArgsMatch(_ToolMetric):
    defaults = {"name": None, "arguments": None, "match": "subset"}
    choices = {"match": MATCHES}

    def __init__(self, params: dict[str, Any]) -> None:
        if params["match"] == "schema" and params["arguments"] is not None:
            try:
                check_schema(params["arguments"], "arguments")
            except ValueError as exc:
                raise MetricParamError(f"{self.name}: match schema: {exc}") from None
        super().__init__(params)

    def describe(self) -> str:
        how = {"subset": "contain every expected key with an equal value (extra keys allowed)",
               "exact": "equal the expected arguments", "schema": "are valid against the expected JSON Schema"}
        return (f"share of answers with a call to the expected tool whose JSON arguments {how[self.params['match']]}; "
                "an expected null is ignored (subset) or means absent (exact); arguments that are not a JSON object, "
                "no such call or an error = fail")

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [int(any(self._matches(call, e, item) for call in self.calls(item)
                        for e in expectations(item, self.params["name"], self.params["arguments"])))
                for item in scored]

    def _matches(self, call: dict[str, str], expected: dict[str, Any], item: Scored) -> bool:
        if expected["name"] is not None and call["name"] != expected["name"]:
            return False
        wanted = expected["arguments"]
        if isinstance(wanted, str):  # a JSON text column: the object it holds
            try:
                wanted = json.loads(wanted)
            except ValueError:
                raise MetricError(f"{self.name}: example {item.example.id!r}: expected arguments {wanted[:60]!r} are "
                                  "text that is not JSON; write them as an object") from None
        if wanted is None:
            raise MetricError(f"{self.name}: example {item.example.id!r} expects no arguments to compare with; give "
                              "expected as {name, arguments} in the dataset, or the metric's arguments parameter")
        actual = decoded(call["arguments"])
        if actual is None:
            return False
        match = self.params["match"]
        if match == "schema":
            try:
                return schema_error(wanted, actual) is None
            except ValueError as exc:  # a schema from the dataset that is not one
                raise MetricError(f"{self.name}: example {item.example.id!r}: expected arguments: {exc}") from None
        wanted = without_nulls(wanted)
        if match == "subset":
            return is_subset(wanted, actual)
        actual = without_nulls(actual)
        return is_subset(wanted, actual) and is_subset(actual, wanted)
