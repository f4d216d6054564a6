"""Case files using tool calls, structured outputs, the Responses API (OpenAI and Azure) and conversations, end to
end against the 127.0.0.1 server through the real SDK and vcrpy: recorded, replayed offline with the same answers
and scores, a changed tool schema / output schema / conversation needing a re-recording (and saying why), and a
secret in the prompt or the answer stored redacted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.errors import NotRecorded
from evalsuite.report.json import SCHEMA_PATH, render_json
from tests._support.chat_server import ChatServer, echo_responder

SECRET = "tok-5b8e2f0c9d7a41e3"
ANSWER_SCHEMA = '{type: object, properties: {answer: {type: string}}, required: [answer], additionalProperties: false}'


def json_responder(body: dict[str, Any]) -> str:
    """Structured answers when a JSON format was asked for (chat's response_format or Responses' text.format)."""
    asked = body.get("response_format") or (body.get("text") or {}).get("format")
    return json.dumps({"answer": echo_responder(body)}) if asked else echo_responder(body)


@dataclass
class Feature:
    case: str  # the case file; ROWS and EXTRA are filled in
    rows: list[dict[str, Any]]
    change: tuple[str, str]  # an edit of the case file that must need a re-recording
    why: str  # how the replay miss explains it
    scores: dict[str, float]  # metric -> value on replay, where the row holding the secret gets it back redacted
    provider_env: dict[str, str]  # credentials to record with (absent on replay)


TOOLS = """
cases:
  - id: weather
    model:
      name: test-model
      tools:
        - {name: get_weather, description: Weather of a city, parameters: {type: object, properties: {city: {type: string}}, required: [city]}}
        - {name: get_time, parameters: {type: object, properties: {}}}
      tool_choice: get_weather
    dataset: {id: id, path: rows.jsonl}
    prompt: {user: "{{ city }}"}
    parse: {kind: tool_calls, field: arguments.city}
    metrics:
      tool_called: {min: 1}
      tool_args_match: {match: subset}
      no_tool_call: {max: 0}
"""
STRUCTURED = """
cases:
  - id: review
    model: {name: test-model, response_format: {json_schema: %s, name: review}}
    dataset: {id: id, path: rows.jsonl}
    prompt: {user: "{{ city }}"}
    parse: {kind: json, field: answer, json_schema: %s}
    metrics: {json_schema: {min: 1}, exact_match: }
""" % (ANSWER_SCHEMA, ANSWER_SCHEMA)
RESPONSES = """
cases:
  - id: ask
    model: {PROVIDER, api: responses, temperature: 0, max_tokens: 20,
            tools: [{name: get_weather, parameters: {type: object, properties: {city: {type: string}}, required: [city]}}],
            tool_choice: none}
    dataset: {id: id, path: rows.jsonl}
    prompt: {system: Answer briefly., user: "{{ city }}"}
    metrics: {exact_match: {min: 0.6}, no_tool_call: }
"""
CONVERSATION = """
cases:
  - id: memory
    model: {name: test-model}
    dataset: {id: id, path: rows.jsonl, expected: expected}
    prompt: {system: Remember what you are told., conversation: log}
    metrics: {exact_match: {min: 0.5}}
"""


def city_rows() -> list[dict[str, Any]]:
    cities = ["Paris", "Oslo", f"Lima {SECRET}"]
    return [{"id": f"c{i}", "city": city, "expected": {"name": "get_weather", "arguments": {"city": city}}}
            for i, city in enumerate(cities)]


def plain_rows() -> list[dict[str, Any]]:
    return [{**row, "expected": row["city"]} for row in city_rows()]


def dialog_rows() -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "expected": text,
             "log": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
                     {"role": "user", "content": text}]} for i, text in enumerate(["one", f"two {SECRET}"])]


FEATURES = {
    "tool_calls": Feature(TOOLS, city_rows(), ("Weather of a city", "Current weather of a city"),
                          "parameters changed since recording (tools)",
                          {"tool_called": 1.0, "tool_args_match": 2 / 3, "no_tool_call": 0.0},
                          {"OPENAI_API_KEY": "sk-test-key-0000"}),
    "structured_outputs": Feature(STRUCTURED, plain_rows(), ("required: [answer], additionalProperties: false}, name",
                                                             "required: [answer]}, name"),
                                  "parameters changed since recording (response_format)",
                                  {"json_schema": 1.0, "exact_match": 2 / 3}, {"OPENAI_API_KEY": "sk-test-key-0000"}),
    "responses": Feature(RESPONSES.replace("PROVIDER", "name: test-model"), plain_rows(), ("tool_choice: none",
                                                                                         "tool_choice: auto"),
                         "parameters changed since recording (tool_choice", {"exact_match": 2 / 3, "no_tool_call": 1.0},
                         {"OPENAI_API_KEY": "sk-test-key-0000"}),
    "responses_azure": Feature(RESPONSES.replace("PROVIDER", "provider: azure_openai, name: eu-deployment, base_url: URL"),
                               plain_rows(), ("max_tokens: 20", "max_tokens: 30"),
                               "parameters changed since recording (max_output_tokens 20 -> 30)",
                               {"exact_match": 2 / 3, "no_tool_call": 1.0}, {"AZURE_OPENAI_API_KEY": "azure-test-key-1"}),
    "conversation": Feature(CONVERSATION, dialog_rows(), ("Remember what you are told.", "Remember everything."),
                            "prompt changed since recording", {"exact_match": 0.5},
                            {"OPENAI_API_KEY": "sk-test-key-0000"}),
}


def run(project: Path, mode: str) -> runner.ItemResult:
    [item] = load_suite(project / "cases" / "api.yaml", project)
    return runner.run_item(item, runner.RunSettings(rootdir=project, record_mode=mode))


def scores(result: runner.ItemResult) -> dict[str, float | None]:
    return {m.name: m.value for m in result.metrics}


@pytest.mark.parametrize("name", FEATURES)
def test_a_case_is_recorded_replayed_offline_rerecorded_when_changed_and_stored_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    feature = FEATURES[name]
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SERVICE_TOKEN", SECRET)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in feature.rows))
    with ChatServer(json_responder) as server:
        (cases / "api.yaml").write_text(feature.case.replace("URL", server.azure_endpoint))
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        for variable, value in feature.provider_env.items():
            monkeypatch.setenv(variable, value)
        live = run(tmp_path, "once")
        sent = server.requests
    assert live.errors == 0 and scores(live) == {m: 1.0 if v else v for m, v in feature.scores.items()}, live.message
    if name.startswith("responses"):
        assert all(body["store"] is False and "input" in body and "max_output_tokens" in body for body in sent)
    if name == "tool_calls":
        assert live.records[0].tool_calls == [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
        assert [r.prediction for r in live.records] == ["Paris", "Oslo", f"Lima {SECRET}"]
        records = json.loads(render_json([live], {}))["items"][0]["records"]  # report.json keeps the calls
        definitions = json.loads(SCHEMA_PATH.read_text())["$defs"]
        record_schema = jsonschema.Draft202012Validator({"$ref": "#/$defs/record", "$defs": definitions})
        assert all(record_schema.is_valid(record) for record in records)
        assert records[1]["tool_calls"] == [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]

    for variable in (*feature.provider_env, "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable)
    replayed = run(tmp_path, "none")  # no server, no key
    assert scores(replayed) == feature.scores
    *same, last = [(r.answer, r.tool_calls, r.prediction, r.prompt_hash) for r in replayed.records]
    assert same == [(r.answer, r.tool_calls, r.prediction, r.prompt_hash) for r in live.records[:-1]]
    assert "[REDACTED:SERVICE_TOKEN]" in json.dumps(last[:2])  # the last row holds the secret: stored redacted

    cassette = tmp_path / "cassettes" / live.suite / f"{live.item_id}.json"
    stored = cassette.read_text()
    assert SECRET not in stored and stored.count("[REDACTED:SERVICE_TOKEN]") >= 2  # in the request and in the answer

    (cases / "api.yaml").write_text((cases / "api.yaml").read_text().replace(*feature.change))
    with pytest.raises(NotRecorded) as missed:
        run(tmp_path, "none")
    assert feature.why in str(missed.value), str(missed.value)
